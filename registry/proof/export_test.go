package proof

// CBORMarshal encodes v as the CBOR form does, for tests that measure the
// parts of a bundle.
var CBORMarshal = cborEnc.Marshal
