package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/gateway/client"
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
				return usagef("--out is required: the private key is written there")
			}
			if strings.HasPrefix(kid, "did:key:") {
				return usagef("--kid %q: a did:key is made from the key itself; keygen without --kid writes one (--kid names a key of another DID, such as did:web)", kid)
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
			return a.printText(map[string]string{"did": s.DID, "kid": s.KID, "file": out}, func(w *errWriter) { w.Println(s.DID) })
		},
	}
	cmd.Flags().StringVar(&kind, "type", record.KeyEd25519, "key type: Ed25519 or P-256")
	cmd.Flags().StringVar(&out, "out", "", "file to write the private JWK to")
	cmd.Flags().StringVar(&kid, "kid", "", "key id for a non-did:key DID, e.g. did:web:college.example#key-1")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}

func (a *app) didCmd() *cobra.Command {
	var offline bool
	cmd := &cobra.Command{
		Use:   "did KEYFILE",
		Short: "Print the DID a key file signs as, after checking that its kid names the key it holds",
		Long: "Print the DID a key file signs as. The file's kid must name the key the file holds: a did:key's\n" +
			"kid is the DID of that very key (did:key:z...#z...); another DID's kid must not name a different\n" +
			"key of that DID in the registry, which holds its keys (--offline skips that look-up). A kid the\n" +
			"registered entity does not list is refused too: 'trustctl jwk KEYFILE' prints the public key to\n" +
			"add with 'entity rotate-keys'.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadKey(args[0])
			if err != nil {
				return err
			}
			if !offline && !strings.HasPrefix(s.DID, "did:key:") {
				if err := a.checkRegisteredKID(cmd.Context(), args[0], s); err != nil {
					return err
				}
			}
			return a.printText(map[string]string{"did": s.DID, "kid": s.KID}, func(w *errWriter) { w.Println(s.DID) })
		},
	}
	cmd.Flags().BoolVar(&offline, "offline", false, "check only what the key file shows, without asking the registry for the DID's keys")
	return cmd
}

// errKIDMismatch: a key file's kid names a key other than the one the file
// holds.
var errKIDMismatch = errors.New("the key file's kid does not name the key it holds")

// loadKey reads a private key file and checks that its kid can name its
// key: a DID URL, and for a did:key exactly the verification method of
// the key the file holds (a did:key's DID document has that one method).
func loadKey(path string) (*record.Signer, error) {
	s, err := record.LoadKeyFile(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(s.DID, "did:") || len(s.DID) <= len("did:") {
		return nil, fmt.Errorf("%s: kid %q is not a DID URL (did:method:id#fragment): give the key file the kid of a DID, or none for a did:key", path, s.KID)
	}
	if !strings.HasPrefix(s.DID, "did:key:") {
		return s, nil
	}
	did, kid, err := record.DIDKey(s.Key().Public())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.KID != kid {
		return nil, fmt.Errorf("%s: %w: kid %s, but the key in the file is %s, whose only key id is %s: "+
			"set the file's kid to that (or remove it), or use the key file of %s",
			path, errKIDMismatch, s.KID, did, kid, s.DID)
	}
	return s, nil
}

// checkRegisteredKID checks a key of a DID other than did:key against the
// keys the registry holds for that DID: the kid must name a registered key
// and that key must be the file's. An entity not registered, or registered
// without keys, cannot contradict the file; nor can a registry that does
// not answer: both are said on stderr.
func (a *app) checkRegisteredKID(ctx context.Context, path string, s *record.Signer) error {
	var ent record.Entity
	err := a.client().Get(ctx, "/v1/entities/"+client.PathID(s.DID), nil, &ent)
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && ae.Problem.Status == http.StatusNotFound:
		a.note("%s is not registered at %s: kid %s not checked against its keys\n", s.DID, a.serverName(), s.KID)
		return nil
	case err != nil:
		a.note("kid %s not checked against the registry's keys of %s (--offline skips the look-up): %v\n", s.KID, s.DID, err)
		return nil
	case !ent.Registered || len(ent.Keys) == 0:
		a.note("%s has no keys in the registry at %s: kid %s not checked\n", s.DID, a.serverName(), s.KID)
		return nil
	}
	did, fragment, _ := strings.Cut(s.KID, "#")
	pub, ok := s.Key().Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return fmt.Errorf("%s: key type %T cannot be compared", path, s.Key().Public())
	}
	kids := make([]string, 0, len(ent.Keys))
	for _, raw := range ent.Keys {
		k, err := record.ParsePublicJWK(raw)
		if err != nil {
			return fmt.Errorf("the registry's key of %s: %w", s.DID, err)
		}
		kids = append(kids, k.KeyID)
		if !record.KIDMatches(k.KeyID, did, fragment) {
			continue
		}
		if !pub.Equal(k.Key) {
			return fmt.Errorf("%s: %w: the registry at %s holds another key under kid %s (index %d): "+
				"use the key file of that key, or rotate %s's keys to this one ('trustctl jwk %s' prints it)",
				path, errKIDMismatch, a.serverName(), s.KID, ent.UpdatedIndex, s.DID, path)
		}
		return nil
	}
	return fmt.Errorf("%s: %w: kid %s is not among the keys the registry at %s holds for %s (%s): "+
		"fix the file's kid, or add the key with 'trustctl entity rotate-keys' ('trustctl jwk %s' prints it; --offline skips this check)",
		path, errKIDMismatch, s.KID, a.serverName(), s.DID, strings.Join(kids, ", "), path)
}

func (a *app) jwkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "jwk KEYFILE",
		Short: "Print the public JWK of a key file (for entity register / rotate-keys)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadKey(args[0])
			if err != nil {
				return err
			}
			jwk, err := s.PublicJWK()
			if err != nil {
				return err
			}
			return a.printText(json.RawMessage(jwk), func(w *errWriter) { w.Println(string(jwk)) })
		},
	}
}

func loadKeys(paths []string) ([]*record.Signer, error) {
	if len(paths) == 0 || len(paths) == 1 && paths[0] == "" {
		return nil, usagef("--key is required: the private key file to sign with")
	}
	out := make([]*record.Signer, 0, len(paths))
	for _, p := range paths {
		s, err := loadKey(p)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
