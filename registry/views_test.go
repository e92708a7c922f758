package registry

import (
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// One-shot reads for tests: each takes a view of the latest state, reads,
// and closes it, as one request of the gateway does.

func (s *State) Decide(q decide.Question, now time.Time) (*record.Decision, error) {
	v := s.View()
	defer v.Close()
	return v.Decide(q, now)
}

func (s *State) DecideSecond(q decide.Question, now time.Time) (*record.Decision, time.Time, error) {
	v := s.View()
	defer v.Close()
	return v.DecideSecond(q, now)
}

func (s *State) DecideRecognition(q decide.RecognitionQuestion, now time.Time) (*decide.RecognitionDecision, error) {
	v := s.View()
	defer v.Close()
	return v.DecideRecognition(q, now)
}

func (s *State) Frameworks(page Page) ([]record.Framework, string, error) {
	v := s.View()
	defer v.Close()
	return v.Frameworks(page)
}

func (s *State) Framework(id string) (*record.FrameworkView, error) {
	v := s.View()
	defer v.Close()
	return v.Framework(id)
}

func (s *State) Entity(did string) (*record.Entity, error) {
	v := s.View()
	defer v.Close()
	return v.Entity(did)
}

func (s *State) Accreditation(id string, now time.Time) (*record.AccreditationView, error) {
	v := s.View()
	defer v.Close()
	return v.Accreditation(id, now)
}

func (s *State) Accreditations(f AccreditationFilter, page Page, now time.Time) ([]record.AccreditationView, string, error) {
	v := s.View()
	defer v.Close()
	return v.Accreditations(f, page, now)
}

func (s *State) History(did string, page Page) ([]record.OperationView, string, error) {
	v := s.View()
	defer v.Close()
	return v.History(did, page)
}

func (s *State) Operation(ref string) (*record.OperationView, error) {
	v := s.View()
	defer v.Close()
	return v.Operation(ref)
}

func (s *State) Changes(since uint64, limit int) ([]record.OperationView, error) {
	v := s.View()
	defer v.Close()
	items, _, err := v.Changes(since, limit)
	return items, err
}

func (s *State) TIRIssuers(offset, limit int) ([]string, int, error) {
	v := s.View()
	defer v.Close()
	return v.TIRIssuers(offset, limit)
}

func (s *State) TIRIssuer(did string, now time.Time) ([]TIRAttribute, error) {
	v := s.View()
	defer v.Close()
	return v.TIRIssuer(did, now)
}

func (s *State) DCCExport(framework string, now time.Time) (*record.DCCRegistry, error) {
	v := s.View()
	defer v.Close()
	return v.DCCExport(framework, now)
}

func (s *State) SearchEntities(q string, page Page) ([]record.Entity, string, error) {
	v := s.View()
	defer v.Close()
	return v.SearchEntities(q, page)
}

func (s *State) SearchFrameworks(q string, page Page) ([]record.Framework, string, error) {
	v := s.View()
	defer v.Close()
	return v.SearchFrameworks(q, page)
}

func (s *State) StatusList(issuer, id string) (*record.StatusListView, error) {
	v := s.View()
	defer v.Close()
	return v.StatusList(issuer, id)
}

func (s *State) StatusListAt(issuer, id string, t time.Time) (*record.StatusListView, error) {
	v := s.View()
	defer v.Close()
	return v.StatusListAt(issuer, id, t)
}

func (s *State) StatusLists(issuer string, page Page) ([]record.StatusList, string, error) {
	v := s.View()
	defer v.Close()
	return v.StatusLists(issuer, page)
}

func (s *State) StatusListHistory(issuer, id string, page Page) ([]record.StatusListVersion, string, error) {
	v := s.View()
	defer v.Close()
	return v.StatusListHistory(issuer, id, page)
}

func (s *State) CheckStatus(issuer, id string, index int, t time.Time) (*record.EntryStatus, error) {
	v := s.View()
	defer v.Close()
	return v.CheckStatus(issuer, id, index, t)
}
