package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/trustreg/trustreg/gateway/client"
)

// Exit codes of trustctl, for scripts. docs/OPERATIONS.md ("trustctl in
// scripts") and `trustctl --help` list them; keep the three in step.
const (
	exitOK    = 0 // done; trust: authorized
	exitError = 1 // any other error: the node refused, no node answered, a file could not be read
	exitUsage = 2 // the command line is wrong: unknown command or flag, missing argument or flag
	exitNo    = 3 // trust: not authorized; a lookup (show, check, ...): no such record

	exitNotVerified = 4 // verify: the proof bundle did not verify
)

// exitCodesHelp is the part of `trustctl --help` that lists the exit codes.
const exitCodesHelp = `Exit codes:
  0  done; trust: AUTHORIZED
  1  an error: the node refused the request, no node answered, a file could not be read
  2  a usage error: unknown command or flag, a missing argument or required flag
  3  trust: NOT AUTHORIZED (the answer is printed as usual); status check: the entry is NOT valid
     (revoked, suspended); a lookup: no such record (404)
  4  verify: NOT VERIFIED (the first reason is printed)`

// errNotAuthorized is returned by trust (and status check) after it
// printed a negative answer: main exits with exitNo and prints nothing
// more.
var errNotAuthorized = errors.New("not authorized")

// usageError is an error in the command line itself.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitCode maps the error run returned to trustctl's exit code.
func exitCode(err error) int {
	var ue *usageError
	var ae *client.APIError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errNotAuthorized):
		return exitNo
	case errors.Is(err, errNotVerified):
		return exitNotVerified
	case errors.As(err, &ae) && noSuchRecord(ae):
		return exitNo
	}
	return exitError
}

// markUsageErrors makes the errors cobra finds in a command line (flags
// that do not parse, arguments a command does not take) usageErrors, in c
// and every command below it.
func markUsageErrors(c *cobra.Command) {
	if !c.HasParent() {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	}
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return &usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markUsageErrors(sub)
	}
}

// Output formats of -o/--output.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// outputFormat checks -o and its alias --json.
func (a *app) outputFormat() error {
	switch a.output {
	case outputTable, outputJSON, outputYAML:
	default:
		return usagef("-o %q: the output is table, json or yaml", a.output)
	}
	if a.json {
		if a.outputSet && a.output != outputJSON {
			return usagef("--json and -o %s ask for different outputs: pass one", a.output)
		}
		a.output = outputJSON
	}
	a.json = a.output == outputJSON // the commands that stream or print a refusal read it
	return nil
}

// outputsKey annotates a command whose output comes in only some of the
// formats (a comma-separated list); every other command prints each.
const outputsKey = "trustctl/outputs"

// offers marks cmd as printing only the given outputs.
func offers(cmd *cobra.Command, outputs ...string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[outputsKey] = strings.Join(outputs, ",")
	return cmd
}

// outputOffered refuses an output cmd does not print, which it would
// otherwise ignore without a word.
func outputOffered(cmd *cobra.Command, output string) error {
	offered, ok := cmd.Annotations[outputsKey]
	if !ok || slices.Contains(strings.Split(offered, ","), output) {
		return nil
	}
	return usagef("%s prints %s only: -o %s is not offered", cmd.CommandPath(), strings.ReplaceAll(offered, ",", " or "), output)
}

// writeYAML writes v, as its JSON reads, in YAML: the field names are the
// JSON's and integers stay integers.
func writeYAML(w io.Writer, v any) error {
	raw, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(yamlNumbers(doc)); err != nil {
		return err
	}
	return enc.Close()
}

// yamlNumbers replaces the json.Numbers in a decoded JSON document with
// int64 or float64, which YAML writes as numbers.
func yamlNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(t.String(), 10, 64); err == nil {
			return u
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	case map[string]any:
		for k, e := range t {
			t[k] = yamlNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = yamlNumbers(e)
		}
	}
	return v
}

// noSuchRecord reports whether a read's error is the node saying the
// record asked for does not exist: a 404 problem document (trustreg's
// not_found, or a status list's STATUS_RETRIEVAL_ERROR). A 404 for the
// path itself (a --server with a path prefix, the admin port: "no route
// ...", or a server that sends no problem document) is no answer about
// any record: it is an error, so a script does not read a misconfigured
// endpoint as a "no".
func noSuchRecord(ae *client.APIError) bool {
	return ae.Method == http.MethodGet && ae.Problem.Status == http.StatusNotFound &&
		ae.Problem.Type != "" && !strings.HasPrefix(ae.Problem.Detail, "no route ")
}
