package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// The API description for people: GET /openapi.html renders openapi.json
// as one page, made on the server from the embedded document, so it needs
// no script, no CDN and nothing but the node. It lists every path and
// operation with its parameters, request body and answers, then every
// schema with its properties; each schema reference is a link to it.
// It is made once, on its first request, and served like the explorer's
// files (an ETag, a short Cache-Control, the explorer's CSP).

// oaDoc is the part of an OpenAPI 3.0 document the page shows.
type oaDoc struct {
	Info struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Servers    []oaServer                            `json:"servers"`
	Tags       []struct{ Name, Description string }  `json:"tags"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas    map[string]*oaSchema  `json:"schemas"`
		Parameters map[string]oaParam    `json:"parameters"`
		Responses  map[string]oaResponse `json:"responses"`
	} `json:"components"`
}

type oaServer struct {
	URL         string `json:"url"`
	Description string `json:"description"`
}

type oaOperation struct {
	Tags        []string              `json:"tags"`
	Summary     string                `json:"summary"`
	Description string                `json:"description"`
	OperationID string                `json:"operationId"`
	Security    []map[string][]string `json:"security"`
	Parameters  []oaParam             `json:"parameters"`
	RequestBody *struct {
		Required bool                   `json:"required"`
		Content  map[string]oaMediaType `json:"content"`
	} `json:"requestBody"`
	Responses map[string]oaResponse `json:"responses"`
}

type oaParam struct {
	Ref         string    `json:"$ref"`
	Name        string    `json:"name"`
	In          string    `json:"in"`
	Required    bool      `json:"required"`
	Description string    `json:"description"`
	Schema      *oaSchema `json:"schema"`
}

type oaResponse struct {
	Ref         string                 `json:"$ref"`
	Description string                 `json:"description"`
	Content     map[string]oaMediaType `json:"content"`
}

type oaMediaType struct {
	Schema *oaSchema `json:"schema"`
}

type oaSchema struct {
	Ref                  string               `json:"$ref"`
	Type                 string               `json:"type"`
	Format               string               `json:"format"`
	Description          string               `json:"description"`
	Enum                 []any                `json:"enum"`
	Items                *oaSchema            `json:"items"`
	OneOf                []*oaSchema          `json:"oneOf"`
	Properties           map[string]*oaSchema `json:"properties"`
	Required             []string             `json:"required"`
	AdditionalProperties json.RawMessage      `json:"additionalProperties"`
}

// Views the template shows.
type (
	pageView struct {
		Title, Version, Description string
		Servers                     []oaServer
		Ops                         []opView
		Schemas                     []schemaView
	}
	opView struct {
		Method, Path, Anchor, Summary, Description, OperationID string
		Tags                                                    string
		Security                                                string
		Servers                                                 []oaServer
		Params                                                  []paramView
		Body                                                    []mediaView
		BodyRequired                                            bool
		Responses                                               []responseView
	}
	paramView struct {
		Name, In, Description string
		Required              bool
		Type                  template.HTML
	}
	mediaView struct {
		MediaType string
		Type      template.HTML
	}
	responseView struct {
		Status, Description string
		Media               []mediaView
	}
	schemaView struct {
		Name, Anchor, Description string
		Type                      template.HTML
		Props                     []propView
	}
	propView struct {
		Name, Description string
		Required          bool
		Type              template.HTML
	}
)

var methodOrder = []string{"get", "head", "post", "put", "patch", "delete"}

// renderOpenAPIPage renders doc as the page.
func renderOpenAPIPage(raw []byte) ([]byte, error) {
	var doc oaDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	v := pageView{Title: doc.Info.Title, Version: doc.Info.Version, Description: doc.Info.Description, Servers: doc.Servers}
	paths := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		item := doc.Paths[p]
		var servers []oaServer
		if s, ok := item["servers"]; ok {
			if err := json.Unmarshal(s, &servers); err != nil {
				return nil, fmt.Errorf("openapi.json: %s servers: %w", p, err)
			}
		}
		for _, m := range methodOrder {
			rawOp, ok := item[m]
			if !ok {
				continue
			}
			var op oaOperation
			if err := json.Unmarshal(rawOp, &op); err != nil {
				return nil, fmt.Errorf("openapi.json: %s %s: %w", m, p, err)
			}
			v.Ops = append(v.Ops, doc.operation(m, p, op, servers))
		}
	}
	names := make([]string, 0, len(doc.Components.Schemas))
	for n := range doc.Components.Schemas {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s := doc.Components.Schemas[n]
		sv := schemaView{Name: n, Anchor: "schema-" + n, Description: s.Description, Type: schemaType(s)}
		sv.Props = properties(s)
		v.Schemas = append(v.Schemas, sv)
	}
	var buf bytes.Buffer
	if err := openapiPageTemplate.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("openapi page: %w", err)
	}
	return buf.Bytes(), nil
}

func (doc *oaDoc) operation(method, path string, op oaOperation, servers []oaServer) opView {
	ov := opView{Method: strings.ToUpper(method), Path: path, Anchor: "op-" + op.OperationID, Summary: op.Summary,
		Description: op.Description, OperationID: op.OperationID, Tags: strings.Join(op.Tags, ", "), Servers: servers}
	if ov.Description == ov.Summary {
		ov.Description = ""
	}
	for _, req := range op.Security {
		for name := range req {
			ov.Security = name
		}
	}
	for _, p := range op.Parameters {
		if p.Ref != "" {
			p = doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
		}
		ov.Params = append(ov.Params, paramView{Name: p.Name, In: p.In, Description: p.Description, Required: p.Required, Type: schemaType(p.Schema)})
	}
	if op.RequestBody != nil {
		ov.BodyRequired = op.RequestBody.Required
		ov.Body = media(op.RequestBody.Content)
	}
	codes := make([]string, 0, len(op.Responses))
	for c := range op.Responses {
		codes = append(codes, c)
	}
	slices.Sort(codes) // "default" sorts after the numbers
	for _, c := range codes {
		r := op.Responses[c]
		if r.Ref != "" {
			r = doc.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")]
		}
		ov.Responses = append(ov.Responses, responseView{Status: c, Description: r.Description, Media: media(r.Content)})
	}
	return ov
}

func media(content map[string]oaMediaType) []mediaView {
	types := make([]string, 0, len(content))
	for t := range content {
		types = append(types, t)
	}
	slices.Sort(types)
	out := make([]mediaView, 0, len(types))
	for _, t := range types {
		out = append(out, mediaView{MediaType: t, Type: schemaType(content[t].Schema)})
	}
	return out
}

func properties(s *oaSchema) []propView {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]propView, 0, len(names))
	for _, n := range names {
		p := s.Properties[n]
		out = append(out, propView{Name: n, Description: p.Description, Required: slices.Contains(s.Required, n), Type: schemaType(p)})
	}
	return out
}

// schemaType is a schema in words, with each reference a link to the
// schema it names.
func schemaType(s *oaSchema) template.HTML {
	if s == nil {
		return ""
	}
	if s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		return template.HTML(`<a href="#schema-` + template.HTMLEscapeString(name) + `">` + template.HTMLEscapeString(name) + `</a>`)
	}
	if len(s.OneOf) > 0 {
		parts := make([]string, 0, len(s.OneOf))
		for _, o := range s.OneOf {
			parts = append(parts, string(schemaType(o)))
		}
		return template.HTML("one of " + strings.Join(parts, " or "))
	}
	t := template.HTMLEscapeString(s.Type)
	switch {
	case s.Type == "array":
		t = "array of " + string(schemaType(s.Items))
	case s.Type == "object" && len(s.AdditionalProperties) > 0 && s.AdditionalProperties[0] == '{':
		var add oaSchema
		if json.Unmarshal(s.AdditionalProperties, &add) == nil {
			t = "map of " + string(schemaType(&add))
		}
	case t == "":
		t = "any"
	}
	if s.Format != "" {
		t += " (" + template.HTMLEscapeString(s.Format) + ")"
	}
	if len(s.Enum) > 0 {
		vals := make([]string, 0, len(s.Enum))
		for _, e := range s.Enum {
			vals = append(vals, template.HTMLEscapeString(fmt.Sprint(e)))
		}
		t += ": " + strings.Join(vals, ", ")
	}
	return template.HTML(t)
}

var openapiPageTemplate = template.Must(template.New("openapi").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Version}}: API description</title>
<link rel="stylesheet" href="/explorer/openapi.css">
</head>
<body>
<header>
<p><a href="/">Registry explorer</a> · <a href="/openapi.json">openapi.json</a></p>
<h1>{{.Title}} <small>{{.Version}}</small></h1>
<p>{{.Description}}</p>
{{range .Servers}}<p>Server: <code>{{.URL}}</code> ({{.Description}})</p>{{end}}
</header>
<nav aria-label="Operations">
<h2>Operations</h2>
<ul>
{{range .Ops}}<li><a href="#{{.Anchor}}"><code>{{.Method}} {{.Path}}</code></a> {{.Summary}}</li>
{{end}}</ul>
<p><a href="#schemas">Schemas</a></p>
</nav>
<main>
{{range .Ops}}<section id="{{.Anchor}}" class="op" aria-labelledby="{{.Anchor}}-h">
<h2 id="{{.Anchor}}-h"><code><span class="method">{{.Method}}</span> {{.Path}}</code></h2>
<p>{{.Summary}}</p>
{{if .Description}}<p>{{.Description}}</p>{{end}}
<p class="meta">operationId <code>{{.OperationID}}</code>{{if .Tags}} · tags {{.Tags}}{{end}}{{if .Security}} · needs <code>{{.Security}}</code> (Authorization: Bearer &lt;token&gt;){{end}}</p>
{{range .Servers}}<p class="meta">Served at <code>{{.URL}}</code> ({{.Description}})</p>{{end}}
{{if .Params}}<table>
<caption>Parameters</caption>
<thead><tr><th scope="col">Name</th><th scope="col">In</th><th scope="col">Type</th><th scope="col">Required</th><th scope="col">Description</th></tr></thead>
<tbody>{{range .Params}}<tr><td><code>{{.Name}}</code></td><td>{{.In}}</td><td>{{.Type}}</td><td>{{if .Required}}yes{{else}}no{{end}}</td><td>{{.Description}}</td></tr>
{{end}}</tbody>
</table>{{end}}
{{if .Body}}<table>
<caption>Request body{{if .BodyRequired}} (required){{end}}</caption>
<thead><tr><th scope="col">Media type</th><th scope="col">Schema</th></tr></thead>
<tbody>{{range .Body}}<tr><td><code>{{.MediaType}}</code></td><td>{{.Type}}</td></tr>
{{end}}</tbody>
</table>{{end}}
<table>
<caption>Responses</caption>
<thead><tr><th scope="col">Status</th><th scope="col">Description</th><th scope="col">Media type and schema</th></tr></thead>
<tbody>{{range .Responses}}<tr><td>{{.Status}}</td><td>{{.Description}}</td><td>{{range .Media}}<code>{{.MediaType}}</code> {{.Type}}<br>{{end}}</td></tr>
{{end}}</tbody>
</table>
</section>
{{end}}
<section id="schemas" aria-labelledby="schemas-h">
<h2 id="schemas-h">Schemas</h2>
{{range .Schemas}}<section id="{{.Anchor}}" class="schema" aria-labelledby="{{.Anchor}}-h">
<h3 id="{{.Anchor}}-h">{{.Name}}</h3>
{{if .Description}}<p>{{.Description}}</p>{{end}}
<p class="meta">{{.Type}}</p>
{{if .Props}}<table>
<caption>Properties of {{.Name}}</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Required</th><th scope="col">Description</th></tr></thead>
<tbody>{{range .Props}}<tr><td><code>{{.Name}}</code></td><td>{{.Type}}</td><td>{{if .Required}}yes{{else}}no{{end}}</td><td>{{.Description}}</td></tr>
{{end}}</tbody>
</table>{{end}}
</section>
{{end}}</section>
</main>
</body>
</html>
`))

// openapiPage is made once, from the embedded document.
var openapiPage = sync.OnceValues(func() (*explorerAsset, error) {
	b, err := renderOpenAPIPage(openapiDoc)
	if err != nil {
		return nil, err
	}
	tag := etagOf(b)
	return &explorerAsset{body: b, contentType: []string{explorerTypes[".html"]}, etag: tag, etagHdr: []string{tag}}, nil
})

// openapiPage answers GET /openapi.html.
func (s *Server) openapiPage(w http.ResponseWriter, r *http.Request) {
	page, err := openapiPage()
	if err != nil {
		writeError(w, r, err)
		return
	}
	page.write(w, r)
}
