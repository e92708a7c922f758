package gateway

import "testing"

func TestNoneMatch(t *testing.T) {
	const etag = `"abc"`
	for field, want := range map[string]bool{
		``:                      false,
		`"abc"`:                 true,
		`W/"abc"`:               true,
		`*`:                     true,
		`"x", "abc"`:            true,
		`"x",W/"abc"`:           true,
		` "x" , "y" `:           false,
		`"ab"`:                  false,
		`"abcd"`:                false,
		`abc`:                   false, // not quoted
		`"x", abc`:              false,
		`"x", "ab`:              false, // not closed
		`W/`:                    false,
		`"a,b", "abc"`:          true, // a comma inside a tag is part of it
		`"a,"abc"`:              false,
		`W/"x", *`:              true,
		`"abc" ignored garbage`: true,
	} {
		if got := noneMatch(field, etag); got != want {
			t.Errorf("If-None-Match %s: %v, want %v", field, got, want)
		}
	}
}
