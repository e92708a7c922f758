package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/registry/record"
)

func (a *app) keygenCmd() *cobra.Command {
	var kind, out, kid string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Generate a signing key (a did:key, or a key of another DID with --kid) and print its DID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required: the private key is written there")
			}
			if _, err := os.Stat(out); err == nil && !force {
				return fmt.Errorf("%s exists: refusing to overwrite a key (use --force)", out)
			}
			s, err := record.GenerateKey(kind)
			if err != nil {
				return err
			}
			if kid != "" {
				if s, err = s.WithKID(kid); err != nil {
					return err
				}
			}
			raw, err := s.PrivateJWK()
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, raw, 0o600); err != nil {
				return err
			}
			a.note("wrote %s (%s key %s)\n", out, kind, s.KID)
			return a.printText(map[string]string{"did": s.DID, "kid": s.KID, "file": out}, func(w *errWriter) { w.println(s.DID) })
		},
	}
	cmd.Flags().StringVar(&kind, "type", record.KeyEd25519, "key type: Ed25519 or P-256")
	cmd.Flags().StringVar(&out, "out", "", "file to write the private JWK to")
	cmd.Flags().StringVar(&kid, "kid", "", "key id for a non-did:key DID, e.g. did:web:college.example#key-1")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}

func (a *app) didCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "did KEYFILE",
		Short: "Print the DID a key file signs as",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := record.LoadKeyFile(args[0])
			if err != nil {
				return err
			}
			return a.printText(map[string]string{"did": s.DID, "kid": s.KID}, func(w *errWriter) { w.println(s.DID) })
		},
	}
}

func (a *app) jwkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "jwk KEYFILE",
		Short: "Print the public JWK of a key file (for entity register / rotate-keys)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := record.LoadKeyFile(args[0])
			if err != nil {
				return err
			}
			jwk, err := s.PublicJWK()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.out, string(jwk))
			return err
		},
	}
}

func loadKeys(paths []string) ([]*record.Signer, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("--key is required: the private key file to sign with")
	}
	out := make([]*record.Signer, 0, len(paths))
	for _, p := range paths {
		s, err := record.LoadKeyFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
