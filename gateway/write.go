package gateway

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// Media types a signed operation may be sent as.
var operationTypes = map[string]bool{
	"application/jose":      true, // compact serialization
	"application/jose+json": true, // JSON serialization
	"application/json":      true,
	"text/plain":            true,
}

func (s *Server) submitOperation(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r); err != nil {
		writeError(w, r, err)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !operationTypes[mt] {
			writeProblem(w, r, api.Problem{Type: problemTypeBase + "unsupported_media_type", Title: "Unsupported Media Type", Status: http.StatusUnsupportedMediaType,
				Detail: fmt.Sprintf("Content-Type %q: send application/jose (compact JWS) or application/jose+json (JWS JSON serialization)", ct)})
			return
		}
	}
	if !s.limitAddress(w, r) {
		return
	}
	limit := min(s.cfg.MaxBodyBytes, record.MaxOperationSize)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.metrics.writesLimited.WithLabelValues(limitedBySize).Inc()
			writeError(w, r, record.Errorf(record.ErrTooLarge, "an operation may be at most %d bytes", limit))
			return
		}
		writeError(w, r, record.Errorf(ErrBadRequest, "read body: %v", err))
		return
	}
	charge, ok := s.limitSigners(w, r, body)
	if !ok {
		return
	}
	res, err := s.cfg.Writer.Submit(r.Context(), body)
	charge.settle(s.cfg.Now(), signersOwn(res, err))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := res.Err(); err != nil {
		p := problemFor(err)
		p.Result = res
		writeProblem(w, r, p)
		return
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	} else {
		w.Header().Set("Location", "/v1/operations/"+res.CID)
	}
	s.writeJSON(w, r, status, res, cacheNone)
}
