package proof

// CBORMarshal encodes v as the CBOR form does, for tests that measure the
// parts of a bundle.
var CBORMarshal = cborEnc.Marshal

// SignatureChecks returns how many governance signatures and checkpoint
// notes Verify has verified in this process, for tests that bound the work
// a hostile bundle costs. Tests that compare counts do not run in
// parallel with other verifications.
func SignatureChecks() (governance, checkpoints int64) {
	return signatureChecks.Load(), checkpointChecks.Load()
}
