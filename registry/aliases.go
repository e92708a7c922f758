package registry

// Forwarding names for what moved to registry/record, so that code written
// against the old names still compiles while branches merge. Nothing in
// this module uses them: the rename tool (see its README) rewrites every
// use to the record package's name. Delete this file once no branch needs
// it.

import (
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// Types.
type (
	Accredit          = record.Accredit
	Accreditation     = record.Accreditation
	AccreditationView = record.AccreditationView
	CreateFramework   = record.CreateFramework
	DCCEntry          = record.DCCEntry
	DCCMeta           = record.DCCMeta
	DCCRegistry       = record.DCCRegistry
	Decision          = record.Decision
	Entity            = record.Entity
	EntityMetadata    = record.EntityMetadata
	EntryStatus       = record.EntryStatus
	Framework         = record.Framework
	FrameworkView     = record.FrameworkView
	Genesis           = record.Genesis
	Header            = record.Header
	Link              = record.Link
	Member            = record.Member
	OperationView     = record.OperationView
	ParsedOperation   = record.ParsedOperation
	ParsedStatusList  = record.ParsedStatusList
	PublishStatusList = record.PublishStatusList
	Recognition       = record.Recognition
	RecognitionChange = record.RecognitionChange
	RegisterEntity    = record.RegisterEntity
	rejection         = record.Rejection
	Result            = record.Result
	RootAccreditor    = record.RootAccreditor
	RootChange        = record.RootChange
	RotateKeys        = record.RotateKeys
	Signer            = record.Signer
	StatusChange      = record.StatusChange
	StatusEvent       = record.StatusEvent
	StatusList        = record.StatusList
	StatusListVersion = record.StatusListVersion
	StatusListView    = record.StatusListView
	StatusMessage     = record.StatusMessage
	UpdateEntity      = record.UpdateEntity
	UpdateFramework   = record.UpdateFramework
)

// Constants.
const (
	ActionAccredit         = record.ActionAccredit
	ActionIssue            = record.ActionIssue
	CodeBadSignature       = record.CodeBadSignature
	CodeConflict           = record.CodeConflict
	CodeIATWindow          = record.CodeIATWindow
	CodeInvalid            = record.CodeInvalid
	CodeMalformed          = record.CodeMalformed
	CodeMalformedValue     = record.CodeMalformedValue
	CodeNotAuthorized      = record.CodeNotAuthorized
	CodeScope              = record.CodeScope
	CodeStatusListLength   = record.CodeStatusListLength
	CodeTooLarge           = record.CodeTooLarge
	CodeUnknownKey         = record.CodeUnknownKey
	DefaultMaxChainLength  = record.DefaultMaxChainLength
	DefaultPageLimit       = record.DefaultPageLimit
	KeyEd25519             = record.KeyEd25519
	KeyP256                = record.KeyP256
	MaxIDLength            = record.MaxIDLength
	MaxOperationSize       = record.MaxOperationSize
	MaxPageLimit           = record.MaxPageLimit
	MaxSignatures          = record.MaxSignatures
	MaxStatusListBytes     = record.MaxStatusListBytes
	MinStatusListEntries   = record.MinStatusListEntries
	OpAccredit             = record.OpAccredit
	OpAddRootAccreditor    = record.OpAddRootAccreditor
	OpCreateFramework      = record.OpCreateFramework
	OpPublishStatusList    = record.OpPublishStatusList
	OpRecognize            = record.OpRecognize
	OpRegisterEntity       = record.OpRegisterEntity
	OpReinstate            = record.OpReinstate
	OpRemoveRootAccredit   = record.OpRemoveRootAccredit
	OpRevoke               = record.OpRevoke
	OpRotateKeys           = record.OpRotateKeys
	OpSuspend              = record.OpSuspend
	OpUnrecognize          = record.OpUnrecognize
	OpUpdateEntity         = record.OpUpdateEntity
	OpUpdateFramework      = record.OpUpdateFramework
	PurposeMessage         = record.PurposeMessage
	PurposeRevocation      = record.PurposeRevocation
	PurposeSuspension      = record.PurposeSuspension
	ReasonActive           = record.ReasonActive
	ReasonChainBroken      = record.ReasonChainBroken
	ReasonExpired          = record.ReasonExpired
	ReasonNeverAuthorized  = record.ReasonNeverAuthorized
	ReasonNotYetValid      = record.ReasonNotYetValid
	ReasonRevoked          = record.ReasonRevoked
	ReasonSuspended        = record.ReasonSuspended
	ReasonUnknownFramework = record.ReasonUnknownFramework
	StatusActive           = record.StatusActive
	StatusRevoked          = record.StatusRevoked
	StatusSuspended        = record.StatusSuspended
	Wildcard               = record.Wildcard
)

// Variables and functions.
var (
	acceptedAlgs              = record.AcceptedAlgs
	ErrBadQuery               = record.ErrBadQuery
	ErrBadSignature           = record.ErrBadSignature
	ErrConflict               = record.ErrConflict
	ErrGenesis                = record.ErrGenesis
	ErrIATWindow              = record.ErrIATWindow
	ErrInvalid                = record.ErrInvalid
	ErrMalformed              = record.ErrMalformed
	ErrMalformedValue         = record.ErrMalformedValue
	ErrNotAuthorized          = record.ErrNotAuthorized
	ErrNotFound               = record.ErrNotFound
	ErrRange                  = record.ErrRange
	ErrScope                  = record.ErrScope
	ErrStatusListLength       = record.ErrStatusListLength
	ErrStatusRetrieval        = record.ErrStatusRetrieval
	ErrTooLarge               = record.ErrTooLarge
	ErrUnknownKey             = record.ErrUnknownKey
	listIDRE                  = record.ListIDRE
	OperationTypes            = record.OperationTypes
	CIDOf                     = record.CIDOf
	checkMetadata             = record.CheckMetadata
	checkSize                 = record.CheckSize
	CoSign                    = record.CoSign
	DIDKey                    = record.DIDKey
	DecodeBitstring           = record.DecodeBitstring
	decodeStrict              = record.DecodeStrict
	EncodeBitstring           = record.EncodeBitstring
	GenerateKey               = record.GenerateKey
	GetStatus                 = record.GetStatus
	highS                     = record.HighS
	invalid                   = record.Invalid
	isGovernance              = record.IsGovernance
	joseKey                   = record.JoseKey
	kidMatches                = record.KIDMatches
	lowSTwin                  = record.LowSTwin
	NewSigner                 = record.NewSigner
	ParseDIDKey               = record.ParseDIDKey
	ParseOperation            = record.ParseOperation
	parseOperation            = record.ParseOperationDigest
	ParsePublicJWK            = record.ParsePublicJWK
	ParseSignerJWK            = record.ParseSignerJWK
	ParseStatusListCredential = record.ParseStatusListCredential
	parseStatusListCredential = record.ParseStoredStatusList
	publicJWK                 = record.PublicJWK
	reject                    = record.Reject
	SetStatus                 = record.SetStatus
	SignJSON                  = record.SignJSON
	StatusEntries             = record.StatusEntries
	StatusListCredential      = record.StatusListCredential
	validText                 = record.ValidText
	ValidateEntity            = record.ValidateEntity
	ValidateID                = record.ValidateID
)

// Forwarding names for the decision code, which moved to registry/decide.
type (
	Evaluator           = decide.Evaluator
	Memo                = decide.Memo
	Question            = decide.Question
	RecognitionDecision = decide.RecognitionDecision
	RecognitionQuestion = decide.RecognitionQuestion
	RecordKey           = decide.RecordKey
	RecordKind          = decide.RecordKind
	Records             = decide.Records
)

const (
	KindAccreditation     = decide.KindAccreditation
	KindEntity            = decide.KindEntity
	KindFramework         = decide.KindFramework
	KindReceived          = decide.KindReceived
	KindRecognition       = decide.KindRecognition
	KindRoot              = decide.KindRoot
	MaxWalk               = decide.MaxWalk
	ReasonNeverRecognized = decide.ReasonNeverRecognized
)

var (
	AccreditationKey = decide.AccreditationKey
	Covers           = decide.Covers
	Decide           = decide.Decide
	DecideSecond     = decide.DecideSecond
	EntityKey        = decide.EntityKey
	Forever          = decide.Forever
	FrameworkKey     = decide.FrameworkKey
	NewEvaluator     = decide.NewEvaluator
	ReceivedKey      = decide.ReceivedKey
	RecognitionKey   = decide.RecognitionKey
	Recognize        = decide.Recognize
	RootKey          = decide.RootKey
	statusAt         = decide.StatusAt
)
