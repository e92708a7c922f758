package main

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

// listing is what a listing command prints with --json: the items, and
// whether the listing goes on past them.
type listing[T any] struct {
	Items []T  `json:"items"`
	More  bool `json:"more,omitempty"`
}

// pageSize is the number of items asked for per page (a test lowers it).
var pageSize = record.MaxPageLimit

// listPages reads a listing page after page, following its next links,
// until it ends or holds limit items (limit 0: until it ends).
func listPages[T any](ctx context.Context, c *client.Client, path string, q url.Values, limit int) (listing[T], error) {
	out := listing[T]{Items: []T{}} // an empty listing prints as [], as the gateway's does
	if limit < 0 {
		return out, fmt.Errorf("--limit %d: give 0 (all) or more", limit)
	}
	q = maps.Clone(q)
	if q == nil {
		q = url.Values{}
	}
	seen := map[string]bool{}
	for {
		// One item past the limit, to know whether the listing goes on.
		per := pageSize
		if limit > 0 {
			per = min(per, limit-len(out.Items)+1)
		}
		q.Set("limit", strconv.Itoa(per))
		var page struct {
			Items []T    `json:"items"`
			Next  string `json:"next"`
		}
		if err := c.Get(ctx, path, q, &page); err != nil {
			return out, err
		}
		out.Items = append(out.Items, page.Items...)
		if limit > 0 && len(out.Items) > limit {
			out.Items, out.More = out.Items[:limit], true
			return out, nil
		}
		if page.Next == "" {
			return out, nil
		}
		next, err := url.Parse(page.Next)
		cursor := ""
		if err == nil {
			cursor = next.Query().Get("cursor")
		}
		if cursor == "" || seen[cursor] {
			return out, fmt.Errorf("%s: the node's next page link %q does not move on", path, page.Next)
		}
		seen[cursor] = true
		q.Set("cursor", cursor)
	}
}

// limitFlag adds --limit to a listing command.
func limitFlag(cmd *cobra.Command, limit *int) {
	cmd.Flags().IntVar(limit, "limit", record.DefaultPageLimit, "list at most this many (0: all of them)")
}

// printListing prints a listing: JSON with --json, or each item through
// line, and on stderr a word that more were left out.
func printListing[T any](a *app, l listing[T], what string, line func(*errWriter, T)) error {
	return a.printText(l, func(w *errWriter) {
		if len(l.Items) == 0 {
			a.note("(no %s)\n", what)
		}
		for _, it := range l.Items {
			line(w, it)
		}
		if l.More {
			a.note("(more %s than these %d: --limit 0 lists them all)\n", what, len(l.Items))
		}
	})
}
