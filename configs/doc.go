// Package configs holds trustd's typed configuration: defaults, loading
// from one YAML file, TRUSTD_* environment variables and flags (precedence
// flag > env > file > default), and validation. Unknown keys are errors.
// Viper is used here and nowhere else but the commands.
package configs
