package registry

import (
	"testing"
)

// TestEveryOperationType applies each operation type once accepted and once
// rejected, with the state unchanged by the rejection.
func TestEveryOperationType(t *testing.T) {
	f := mustChain(t)
	stranger := mustKey(t, KeyEd25519)
	other := "https://other.example/fw"
	selfReg := mustKey(t, KeyEd25519)
	web := "did:web:agency.example"
	wk := mustKey(t, KeyEd25519)
	ws, _ := wk.WithKID(web + "#k1")
	wjwk, _ := ws.PublicJWK()
	nk, _ := mustKey(t, KeyP256).WithKID(web + "#k2")
	njwk, _ := nk.PublicJWK()
	steps := []struct {
		op       string
		accepted []byte
		rejected []byte
		code     string
	}{
		{OpUpdateFramework,
			f.govSign(OpUpdateFramework, map[string]any{"id": fwID, "name": "Health professions", "maxChainLength": 3}),
			f.sign(stranger, OpUpdateFramework, map[string]any{"id": fwID, "name": "mine"}), CodeNotAuthorized},
		{OpAddRootAccreditor,
			f.govSign(OpAddRootAccreditor, map[string]any{"framework": fwID, "accreditor": stranger.DID}),
			f.govSign(OpAddRootAccreditor, map[string]any{"framework": "https://example.org/missing", "accreditor": stranger.DID}), CodeInvalid},
		{OpRemoveRootAccredit,
			f.govSign(OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": stranger.DID, "reason": "merged"}),
			f.govSign(OpRemoveRootAccredit, map[string]any{"framework": fwID, "accreditor": f.qa.DID}), CodeConflict},
		{OpRegisterEntity,
			f.sign(selfReg, OpRegisterEntity, map[string]any{"id": selfReg.DID, "name": "Self-registered college"}),
			f.sign(selfReg, OpRegisterEntity, map[string]any{"id": selfReg.DID, "name": "again"}), CodeConflict},
		{OpRegisterEntity,
			f.govSign(OpRegisterEntity, map[string]any{"id": web, "name": "Agency", "keys": []any{wjwk}}),
			f.govSign(OpRegisterEntity, map[string]any{"id": "did:web:x.example", "name": "Bad", "metadata": map[string]any{"country": "Narnia"}}), CodeInvalid},
		{OpUpdateEntity,
			f.sign(ws, OpUpdateEntity, map[string]any{"id": web, "metadata": map[string]any{"country": "US"}}),
			f.sign(ws, OpUpdateEntity, map[string]any{"id": web, "name": " "}), CodeInvalid},
		{OpRotateKeys,
			f.sign(ws, OpRotateKeys, map[string]any{"id": web, "keys": []any{wjwk, njwk}}),
			f.sign(stranger, OpRotateKeys, map[string]any{"id": web, "keys": []any{njwk}}), CodeNotAuthorized},
		{OpSuspend,
			f.sign(f.qa, OpSuspend, map[string]any{"accreditation": f.collegeAcc}),
			f.sign(f.qa, OpSuspend, map[string]any{"accreditation": "bafkreinothere"}), CodeInvalid},
		{OpReinstate,
			f.sign(f.qa, OpReinstate, map[string]any{"accreditation": f.collegeAcc}),
			f.sign(f.college, OpReinstate, map[string]any{"accreditation": f.collegeAcc}), CodeNotAuthorized},
		{OpRevoke,
			f.sign(f.qa, OpRevoke, map[string]any{"accreditation": f.collegeAcc}),
			f.sign(f.root, OpRevoke, map[string]any{"accreditation": f.collegeAcc, "reason": "twice"}), CodeConflict},
		{OpRecognize,
			f.govSign(OpRecognize, map[string]any{"framework": fwID, "recognized": other}),
			f.sign(f.root, OpRecognize, map[string]any{"framework": fwID, "recognized": other}), CodeNotAuthorized},
		{OpUnrecognize,
			f.govSign(OpUnrecognize, map[string]any{"framework": fwID, "recognized": other}),
			f.govSign(OpRecognize, map[string]any{"framework": fwID, "recognized": fwID}), CodeInvalid},
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
