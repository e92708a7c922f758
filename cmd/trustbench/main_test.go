package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestAFailedPartIsReportedWithTheRun(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-trustd")
	var out bytes.Buffer
	err := run(context.Background(), []string{"--trustd", missing, "--skip-writes", "--scale", "0", "--entities", "10", "--json"}, &out)
	if err == nil || !strings.Contains(err.Error(), "reads:") {
		t.Fatalf("run with a missing trustd: %v, want the reads' error", err)
	}
	var rep report
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("the report is not JSON: %v\n%s", jerr, out.Bytes())
	}
	if rep.Error != err.Error() || len(rep.Reads) != 0 {
		t.Fatalf("report error %q with %d read results; want %q and none", rep.Error, len(rep.Reads), err)
	}
	out.Reset()
	run(context.Background(), []string{"--trustd", missing, "--skip-writes", "--scale", "0", "--entities", "10"}, &out)
	if !strings.Contains(out.String(), "INCOMPLETE, the run stopped at: reads:") {
		t.Fatalf("the text report does not say the run stopped:\n%s", out.String())
	}
}
