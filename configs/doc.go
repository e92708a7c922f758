// Package configs holds trustd's typed configuration: defaults, loading
// from one YAML file, TRUSTD_* environment variables and flags (precedence
// flag > env > file > default), and validation. Unknown keys are errors.
//
// Each key is defined once, in keyTable (keys.go): the Config field it
// sets, its default, its flag and its documentation line. Its name comes
// from the field's tags and its environment variable from its name;
// Default, RegisterFlags, Load, Redacted, Reference (the key table of
// docs/OPERATIONS.md) and Example (configs/trustd.example.yaml) are all
// derived from that table, and tests keep the two documents equal to it.
// Load reads the configuration file once.
//
// Viper is used here and nowhere else but the commands.
package configs
