package main

import "github.com/trustreg/trustreg/cmd/internal/textout"

// errWriter writes to W until a write fails and keeps that first error in
// Err (textout.Writer).
type errWriter = textout.Writer
