// Package proof checks trustreg's proof bundles offline: an answer of one
// node, with the records it was computed from and the proofs that tie them
// to a log a quorum of the consortium's cosigners signed (SPEC §7, issue
// #32). A wallet or a verifier service imports it and trusts nothing but
// the consortium's genesis document. It imports only the standard library,
// the record types (registry/record), the decision code (registry/decide),
// the state map (registry/smt), the log (registry/tlog) and a CBOR codec
// (fxamacker/cbor, for the CBOR form): no storage, network or consensus
// library.
//
// Verify checks a Bundle and recomputes its decision with the same code the
// node runs (decide.Decide, decide.Recognize), over the proven records
// alone. Recorder is the producer's half: a decide.Records that records the
// keys a decision reads, so a node proves exactly those. DESIGN.md holds the
// threat model, the sizes and how to verify a bundle by hand.
//
// # The bundle, version 1
//
// A bundle is one JSON object. Byte strings are standard base64 with
// padding (RFC 4648 §4), times RFC 3339 in UTC, indexes decimal numbers.
// Readers refuse unknown fields, a version other than 1, and more than
// MaxBundleSize bytes.
//
//	version      1
//	question     what was asked:
//	  type         "authorization" (TRQP /authorization, decide.Question),
//	               "recognition" (TRQP /recognition, decide.RecognitionQuestion),
//	               "records" (records as stored, such as an entity or an
//	               accreditation: no decision; only at and applied are set,
//	               and the answer holds only index, equal to applied)
//	               or "statusList" (a status list's version in force at
//	               at with the issuer's issue authorization then: an
//	               authorization of entity, the issuer, action "issue",
//	               at the current version's commit time or the time the
//	               version in force was asked for, and no asOf)
//	  entity       authorization: the DID asked about
//	  framework    the framework (TRQP authority_id); for a recognition the
//	               recognizing one
//	  action       authorization: "issue" or "accredit"
//	  resource     optional: the credential type asked about
//	  jurisdiction authorization, optional: an ISO 3166 code
//	  recognized   recognition: the framework asked about
//	  list         statusList: the list's id
//	  at           the valid time the answer was evaluated at (never absent:
//	               a question for "now" carries the node's now)
//	  asOf         optional: the registry index the question asked about
//	               (absent: the latest state)
//	  applied      the raft index of the state the answer was computed over:
//	               the leaf's index
//	answer       the answer as the node gave it, what Verify must find again:
//	  authorized   authorization: true or false
//	  recognized   recognition: true or false
//	  reason       the reason code (record.Reason*, decide.ReasonNeverRecognized)
//	  chain        authorization, optional: the accreditation ids from the
//	               entity's up to the root's
//	  root         authorization, optional: the root accreditor
//	  index        the index answered as of (asOf, else applied)
//	records      every record the decision read, each once, in any order
//	             (at most MaxRecords):
//	  kind         "framework", "accreditation", "root", "recognition",
//	               "entity" or "received" (decide.RecordKind)
//	  a, b         the identifiers of decide.RecordKey: a the framework id,
//	               accreditation id or DID; b for root (the accreditor's
//	               DID), recognition (the recognized framework) and received
//	               (the framework; a is the subject)
//	  bytes        the record's exact stored bytes (a received listing's are
//	               decide.EncodeReceived of its ids); null: the record is
//	               absent
//	statusList   statusList only: the list's stored records, proven by
//	             mapProof with the records:
//	  list         the list record's stored bytes (record.StatusList),
//	               under store key 0x0f issuer 0 list; null: absent (a
//	               bundle that proves the list absent proves no credential)
//	  versionIndex the registry index of the version in force at at: the
//	               list's currentIndex, or a superseded version's
//	  version      the version record's stored bytes
//	               (record.StatusListVersion: its credential member is the
//	               issuer-signed credential byte for byte, its cid that
//	               credential's CID, its time at or before at), under store
//	               key 0x10 issuer 0 list 0 versionIndex (8 bytes
//	               big-endian)
//	  nextIndex    optional, with next: the registry index of the version
//	               published next, when the version is not the current one
//	  next         optional: that version's stored bytes (its previous is
//	               the version's cid, its time after at), under store key
//	               0x10 issuer 0 list 0 nextIndex; absent, the list record
//	               must name the version current
//	mapProof     one smt batch proof (smt.Map.ProveBatch) of every record's
//	             claim against the leaf's map root: key
//	             SHA-256(decide.StoreKey(record key)), value SHA-256(bytes)
//	             when present; a statusList bundle's list records (two,
//	             or three with next) too, under SHA-256(store key)
//	leaf         the tlog leaf (tlog.Leaf, version 1 encoding) of the entry
//	             whose state answered
//	leafIndex    its position in the log, from 0
//	leafSize     optional: the size of the tree inclusion is proven in, when
//	             it is older than the checkpoint's (then consistency is
//	             required unless it equals the checkpoint's size)
//	inclusion    the RFC 6962 inclusion proof of the leaf in the tree of
//	             leafSize (absent: the checkpoint's size), its 32-byte
//	             hashes concatenated
//	consistency  optional: the RFC 6962 consistency proof from leafSize to
//	             the checkpoint's size, hashes concatenated
//	checkpoint   the C2SP signed note: the tlog checkpoint text (origin
//	             tlog.Origin(record.CIDOf(genesis)), size, root hash), a
//	             blank line, and tlog-cosignature/v1 lines of the cosigners
//	cosigners    optional, present when governance changed the cosigner set
//	             before the checkpoint (setCosigners; cosigners.go):
//	  record       the state's cosigner-set record (record.CosignerSet) as
//	               stored, claimed by mapProof under SHA-256(0x15)
//	  changes      every setCosigners applied up to the checkpoint, in log
//	               order (at most MaxCosignerChanges), each:
//	    jws          the operation's exact bytes
//	    leaf         the tlog leaf of its entry
//	    leafIndex    that leaf's position in the log
//	    inclusion    its RFC 6962 inclusion proof in the checkpoint's tree
//
// A question without asOf must be answered from the last leaf of the
// checkpoint's log (leafIndex = size − 1): an older leaf could hide a later
// status event. So must a bundle with cosigners, whose record is proven
// against that leaf's map root. An asOf question may use any leaf of index
// ≥ asOf, proven in the checkpoint's tree directly or through leafSize and
// consistency.
//
// # The CBOR form
//
// The same bundle has a binary form (RFC 8949 CBOR, media type
// application/cbor; MarshalCBOR, ParseBundleCBOR): the JSON object above as
// a CBOR map with the same keys (text strings), left out where the JSON
// leaves them out, and the same values, except that every byte string the
// JSON writes in base64 (mapProof, leaf, inclusion, consistency, a
// record's bytes, statusList's list, version and next, cosigners' record and
// each change's jws, leaf and inclusion) is a CBOR byte string
// (major type 2) of those bytes:
//
//	map (major type 5)        a JSON object; keys are text strings
//	array (major type 4)      a JSON array (records, chain, changes)
//	text string (type 3)      a JSON string that is not base64: kinds,
//	                          identifiers, question fields, reason, the
//	                          checkpoint note byte for byte, and at, in
//	                          RFC 3339 as in JSON
//	byte string (type 2)      a base64 string's bytes; inclusion and
//	                          consistency are their 32-byte hashes
//	                          concatenated
//	unsigned integer (type 0) a JSON number (version, indexes)
//	true, false, null         the same; null is an absent record's bytes
//
// It is written in the core deterministic encoding (RFC 8949 §4.2.1:
// shortest heads, definite lengths, map keys sorted by their encoded
// bytes), and a reader accepts that encoding only: no tags, no
// indefinite lengths, no duplicate or unknown keys, nothing after the map,
// and exactly the bytes MarshalCBOR writes for the bundle read (a time as
// a number, an explicit zero for a field left out, or keys out of order
// are refused). The first byte tells the forms apart: a CBOR map starts
// with 0xa0 to 0xbf, a JSON text never does.
//
// # Compression
//
// Either form may be compressed with gzip (RFC 1952: one member, nothing
// after it; it starts with 0x1f 0x8b), expanding to at most MaxBundleSize
// bytes. ParseAny reads all four (JSON, CBOR, and gzip of either). The
// gzip of the CBOR form is the compact form, the one issue #32's size
// budget is held on (DESIGN.md, Size).
package proof
