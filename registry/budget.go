package registry

import (
	"errors"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// ErrReadBudget is what BudgetedView.Decide returns once the decisions that
// share a ReadBudget have read more listed accreditations than it allows.
var ErrReadBudget = errors.New("registry: the decisions' read budget is spent")

// ReadBudget bounds what a run of decisions reads (the questions of one
// batch), counted in listed accreditations: each accreditation in a
// subject's received listing that a decision reads (decide.Records.
// Received, which a decision reads whole), whether the listing comes
// from the store or from the record cache, so the count of a question
// is the same cold or warm. It is what a decision's cost grows with: the
// rest of what it reads is the framework and, for each accreditation
// that matches the question, a chain of at most decide.MaxWalk parents
// and a root.
type ReadBudget struct {
	Max  int // listed accreditations the decisions may read
	Read int // listed accreditations read so far
}

// spend counts n listed accreditations, and reports ErrReadBudget when
// they take the count past Max.
func (b *ReadBudget) spend(n int) error {
	b.Read += n
	if b.Read > b.Max {
		return ErrReadBudget
	}
	return nil
}

// Within returns the view's decisions counted in b (BudgetedView.Decide).
func (v *View) Within(b *ReadBudget) *BudgetedView {
	x := &BudgetedView{v: v, b: b, src: budgetedRecords{&v.rd, b}}
	if m := v.memo(); m != nil {
		x.memo = &budgetedMemo{m, b}
	}
	return x
}

// BudgetedView makes a view's decisions within a ReadBudget.
type BudgetedView struct {
	v    *View
	b    *ReadBudget
	src  budgetedRecords
	memo decide.Memo // a *budgetedMemo, or nil when the view reads no record cache
}

// Decide is View.Decide, counting what the decision reads in the budget.
// It returns ErrReadBudget, and no decision, once the budget's Read
// passes its Max: a listing read from the store that would pass it is
// refused before any of its accreditations is read; one the record cache
// holds is counted when recalled, and the decision made from it is then
// refused. A decision within the budget is the one View.Decide makes.
func (x *BudgetedView) Decide(q decide.Question, now time.Time) (*record.Decision, error) {
	d, err := decide.Decide(&x.src, x.memo, x.v.index, q, now)
	if err != nil {
		return nil, err
	}
	if x.b.Read > x.b.Max {
		return nil, ErrReadBudget
	}
	return d, nil
}

// budgetedRecords counts the received listings read from the store.
type budgetedRecords struct {
	decide.Records
	b *ReadBudget
}

func (r *budgetedRecords) Received(subject, framework string) ([]string, error) {
	ids, err := r.Records.Received(subject, framework)
	if err != nil {
		return nil, err
	}
	if err := r.b.spend(len(ids)); err != nil {
		return nil, err
	}
	return ids, nil
}

// budgetedMemo counts the received listings recalled from the record
// cache.
type budgetedMemo struct {
	decide.Memo
	b *ReadBudget
}

func (m *budgetedMemo) Recall(k decide.RecordKey) (any, bool) {
	v, ok := m.Memo.Recall(k)
	if recs, listed := v.([]*record.Accreditation); ok && listed && k.Kind == decide.KindReceived {
		m.b.Read += len(recs)
	}
	return v, ok
}
