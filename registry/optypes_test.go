package registry

import (
	"testing"

	"github.com/trustreg/trustreg/registry/record"
)

// TestEveryOperationType applies each operation type once accepted and once
// rejected, with the state unchanged by the rejection.
func TestEveryOperationType(t *testing.T) {
	f := mustChain(t)
	stranger := mustKey(t, record.KeyEd25519)
	other := "https://other.example/fw"
	selfReg := mustKey(t, record.KeyEd25519)
	web := "did:web:agency.example"
	wk := mustKey(t, record.KeyEd25519)
	ws, _ := wk.WithKID(web + "#k1")
	wjwk, _ := ws.PublicJWK()
	nk, _ := mustKey(t, record.KeyP256).WithKID(web + "#k2")
	njwk, _ := nk.PublicJWK()
	steps := []struct {
		op       string
		accepted []byte
		rejected []byte
		code     string
	}{
		{record.OpUpdateFramework,
			f.govSign(record.OpUpdateFramework, map[string]any{"id": fwID, "name": "Health professions", "maxChainLength": 3}),
			f.sign(stranger, record.OpUpdateFramework, map[string]any{"id": fwID, "name": "mine"}), record.CodeNotAuthorized},
		{record.OpAddRootAccreditor,
			f.govSign(record.OpAddRootAccreditor, map[string]any{"framework": fwID, "accreditor": stranger.DID}),
			f.govSign(record.OpAddRootAccreditor, map[string]any{"framework": "https://example.org/missing", "accreditor": stranger.DID}), record.CodeInvalid},
		{record.OpRemoveRootAccredit,
			f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": stranger.DID, "reason": "merged"}),
			f.govSign(record.OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.qa.DID}), record.CodeConflict},
		{record.OpRegisterEntity,
			f.sign(selfReg, record.OpRegisterEntity, map[string]any{"id": selfReg.DID, "name": "Self-registered college"}),
			f.sign(selfReg, record.OpRegisterEntity, map[string]any{"id": selfReg.DID, "name": "again"}), record.CodeConflict},
		{record.OpRegisterEntity,
			f.govSign(record.OpRegisterEntity, map[string]any{"id": web, "name": "Agency", "keys": []any{wjwk}}),
			f.govSign(record.OpRegisterEntity, map[string]any{"id": "did:web:x.example", "name": "Bad", "metadata": map[string]any{"country": "Narnia"}}), record.CodeInvalid},
		{record.OpUpdateEntity,
			f.sign(ws, record.OpUpdateEntity, map[string]any{"id": web, "metadata": map[string]any{"country": "US"}}),
			f.sign(ws, record.OpUpdateEntity, map[string]any{"id": web, "name": " "}), record.CodeInvalid},
		{record.OpRotateKeys,
			f.sign(ws, record.OpRotateKeys, map[string]any{"id": web, "keys": []any{wjwk, njwk}}),
			f.sign(stranger, record.OpRotateKeys, map[string]any{"id": web, "keys": []any{njwk}}), record.CodeNotAuthorized},
		{record.OpSuspend,
			f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}),
			f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": "bafkreinothere"}), record.CodeInvalid},
		{record.OpReinstate,
			f.sign(f.qa, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc}),
			f.sign(f.college, record.OpReinstate, map[string]any{"accreditation": f.collegeAcc}), record.CodeNotAuthorized},
		{record.OpRevoke,
			f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc}),
			f.sign(f.root, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "reason": "twice"}), record.CodeConflict},
		{record.OpRecognize,
			f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": other}),
			f.sign(f.root, record.OpRecognize, map[string]any{"framework": fwID, "recognized": other}), record.CodeNotAuthorized},
		{record.OpUnrecognize,
			f.govSign(record.OpUnrecognize, map[string]any{"framework": fwID, "recognized": other}),
			f.govSign(record.OpRecognize, map[string]any{"framework": fwID, "recognized": fwID}), record.CodeInvalid},
	}
	for _, s := range steps {
		if r := f.apply(s.accepted); !r.Accepted || r.Op != s.op {
			t.Fatalf("%s: %+v, want accepted", s.op, r)
		}
		before := f.digest()
		if r := f.apply(s.rejected); r.Accepted || r.Code != s.code {
			t.Fatalf("%s rejection: %+v, want %s", s.op, r, s.code)
		}
		if f.digest() != before {
			t.Fatalf("%s rejection changed the state", s.op)
		}
	}
	v, err := f.s.Framework(fwID)
	if err != nil || v.Name != "Health professions" || v.MaxChainLength != 3 {
		t.Fatalf("framework after update: %+v %v", v, err)
	}
}
