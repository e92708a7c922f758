package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/trustreg/trustreg/gateway/client"
	"github.com/trustreg/trustreg/registry/record"
)

// Forms of an accreditation trustctl accredit writes.
const (
	accreditFormCredential = "credential" // EBSI's Verifiable Accreditation, a VC-JWT (default)
	accreditFormOperation  = "operation"  // trustreg's accredit operation, as before feature level 5
)

// tirPath is the EBSI Trusted Issuers Registry binding's v4 base path.
const tirPath = "/trusted-issuers-registry/v4"

// accreditCredential signs the accreditation as the accreditor's Verifiable
// Accreditation (a VC-JWT) and submits it (or writes it with --out). Its
// termsOfUse names the TIR attribute the accreditor grants under: parent's,
// or, for a root accreditor (parent empty), its root role in fw.
func (a *app) accreditCredential(ctx context.Context, sg *signing, f record.AccreditationCredentialFields, fw, parent string) error {
	signers, err := loadKeys(sg.keys)
	if err != nil {
		return err
	}
	if f.TermsOfUse, err = a.grantAttribute(ctx, fw, f.Accreditor, parent); err != nil {
		return err
	}
	f.IAT = time.Now()
	claims, err := record.NewAccreditationCredential(f)
	if err != nil {
		return fmt.Errorf("accredit: %w", err)
	}
	jwt, err := signers[0].SignVCJWT(claims)
	if err != nil {
		return err
	}
	if sg.out != "" {
		if err := os.WriteFile(sg.out, jwt, 0o644); err != nil {
			return err
		}
		a.note("wrote the signed accreditation credential to %s; submit with 'trustctl submit %s'\n", sg.out, sg.out)
		return nil
	}
	return a.submit(ctx, jwt)
}

// grantAttribute returns the URL of the TIR attribute accreditor grants
// under: its accreditation parent, or its root role in framework fw.
func (a *app) grantAttribute(ctx context.Context, fw, accreditor, parent string) (string, error) {
	// The attribute's URL at the first gateway --server names (every node
	// serves the same attribute at the same path).
	base := strings.TrimSuffix(a.gw.Endpoints[0], "/") + tirPath + "/issuers/" + client.PathID(accreditor) + "/attributes/"
	if parent != "" {
		d, err := record.ParseAttributeRef(parent, accreditor)
		if err != nil {
			return "", fmt.Errorf("accredit: --parent %s: %w", parent, err)
		}
		return base + hex.EncodeToString(d[:]), nil
	}
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	path := "/trusted-issuers-registry/v5/issuers/" + client.PathID(accreditor) + "/attributes"
	if err := a.client().Get(ctx, path, url.Values{"page[size]": {"50"}}, &list); err != nil {
		return "", fmt.Errorf("accredit: find %s's root role in %s: %w", accreditor, fw, err)
	}
	for _, it := range list.Items {
		var one struct {
			Attribute struct {
				Trustreg struct {
					Framework     string `json:"framework"`
					Accreditation string `json:"accreditation"`
				} `json:"trustreg"`
			} `json:"attribute"`
		}
		if err := a.client().Get(ctx, path+"/"+it.ID, url.Values{"trustreg": {"true"}}, &one); err != nil {
			return "", fmt.Errorf("accredit: read %s's attribute %s: %w", accreditor, it.ID, err)
		}
		if x := one.Attribute.Trustreg; x.Framework == fw && x.Accreditation == "" {
			return base + it.ID, nil
		}
	}
	return "", fmt.Errorf("accredit: %s holds no root role in %s to grant under: name the accreditation it grants under with --parent", accreditor, fw)
}

// parseTimeFlag reads a time flag as setTime does; empty is nil.
func parseTimeFlag(name, v string) (*time.Time, error) {
	m := map[string]any{}
	if err := setTime(m, name, v); err != nil || v == "" {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, m[name].(string))
	return &t, err
}
