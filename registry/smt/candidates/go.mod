module github.com/trustreg/trustreg/registry/smt/candidates

go 1.26.8

require (
	filippo.io/torchwood v0.6.1
	github.com/google/trillian v1.8.0
)
