// Command trustd runs a trustreg node. With no configuration it starts a
// single-node development cluster on loopback with data under ./trustd-data.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/node"
	"github.com/trustreg/trustreg/node/cosign"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/version"
)

func main() {
	useMallocHugePages()
	tuneCollector(os.Getenv)
	limitMallocArenas(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "trustd:", err)
		os.Exit(1)
	}
}

// allowTestDelayFlag lets p2p.test_delay and p2p.test_jitter take effect.
const allowTestDelayFlag = "allow-test-delay"

// errTestDelay refuses a delay meant for tests and benchmarks when
// --allow-test-delay was not given: set by mistake in production, it
// would slow every write.
var errTestDelay = errors.New("p2p.test_delay and p2p.test_jitter are for tests and benchmarks only")

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cmd := &cobra.Command{
		Use:           "trustd",
		Short:         "Run a trustreg trust-registry node",
		Long:          "trustd runs a trustreg node. With no configuration it starts a single-node development cluster\non loopback, with data, a development genesis and its keys under ./trustd-data.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		Version:       version.Get().String(),
	}
	configs.RegisterFlags(cmd.Flags())
	allowTestDelay := cmd.Flags().Bool(allowTestDelayFlag, false, "let p2p.test_delay and p2p.test_jitter delay this node's traffic to other members (tests and benchmarks only)")
	cmd.AddCommand(identityCmd(stdout), restoreCmd(stdout), configCmd(stdout), auditCmd(stdout), versionCmd(stdout))
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := configs.Load(cmd.Flags(), environ)
		if err != nil {
			return err
		}
		if (cfg.P2P.TestDelay > 0 || cfg.P2P.TestJitter > 0) && !*allowTestDelay {
			return fmt.Errorf("%w: p2p.test_delay %s, p2p.test_jitter %s; unset them, or pass --%s in a test or benchmark", errTestDelay, cfg.P2P.TestDelay, cfg.P2P.TestJitter, allowTestDelayFlag)
		}
		logger := newLogger(stderr, cfg.Log)
		logger.Info("configuration", "config", cfg.Redacted())
		// SIGHUP reloads the TLS certificates. It is caught from before
		// the node starts: uncaught, it would end the process.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		n, err := node.New(*cfg, node.Options{Logger: logger})
		if err != nil {
			return err
		}
		defer func() {
			if err := n.Close(); err != nil {
				logger.Warn("the node did not close cleanly", "err", err)
			}
		}()
		if err := printWelcome(stdout, cfg, n); err != nil {
			// The node serves without the banner; the log says why it is missing.
			logger.Warn("the start-up text was not written to stdout", "err", err)
		}
		for {
			select {
			case <-ctx.Done():
				logger.Info("shutting down")
				return nil
			case err := <-n.Errors():
				return err
			case <-hup:
				reloadTLS(logger, n)
			}
		}
	}
	return cmd.ExecuteContext(ctx)
}

// reloadTLS reads the TLS certificates again, on SIGHUP. A pair that does
// not load is logged, and the one served before stays.
func reloadTLS(logger *slog.Logger, n *node.Node) {
	served, err := n.ReloadTLS()
	switch {
	case err != nil:
		logger.Error("SIGHUP: TLS certificate not reloaded; serving the one loaded before", "err", err)
	case !served:
		logger.Info("SIGHUP: no TLS certificate configured, nothing to reload")
	}
}

func newLogger(w io.Writer, c configs.LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// printWelcome writes the start-up text to out and returns the first write
// error.
func printWelcome(out io.Writer, cfg *configs.Config, n *node.Node) error {
	w := &errWriter{W: out}
	w.Printf("trustd node %s\n", n.PeerID())
	w.Printf("  gateway  %s\n", n.GatewayURL())
	w.Printf("  explorer %s/  (the registry explorer: open it in a web browser)\n", n.GatewayURL())
	w.Printf("  data     %s\n", cfg.DataDir)
	if cfg.Genesis == "" {
		w.Printf("  mode     development: genesis %s, keys in %s\n",
			filepath.Join(cfg.DataDir, node.DevGenesisFile), filepath.Join(cfg.DataDir, "keys"))
	}
	w.Printf("\nTry it:\n  curl %s/v1/status\n", n.GatewayURL())
	if cfg.Genesis == "" {
		w.Printf("  trustctl --server %s framework create --id https://example.org/frameworks/nursing --name Nursing \\\n"+
			"      --root $(trustctl did %s) --key %s\n",
			n.GatewayURL(), shellQuote(filepath.Join(cfg.DataDir, node.DevRootAccreditorKey)), shellQuote(filepath.Join(cfg.DataDir, node.DevGovernanceKey)))
	}
	w.Println("  (README.md has the five-minute tour)")
	return w.Err
}

// shellQuote returns s as one word of a POSIX shell command: as it is when
// it holds only characters no shell treats specially, else in single
// quotes (a single quote inside ends the quoting, is escaped, and starts
// it again). The commands trustd prints are meant to be pasted, and a data
// directory may hold spaces.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !shellSafe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellSafe reports whether no POSIX shell treats r specially in a word.
func shellSafe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)
}

// configCmd prints the configuration keys (the table of
// docs/OPERATIONS.md) or the example file, both from configs' one list of
// keys.
func configCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the configuration keys or an example configuration file",
		Args:  cobra.NoArgs,
	}
	for _, sub := range []struct {
		use, short string
		text       func() string
	}{
		{"keys", "Print every configuration key with its environment variable, flag, default and meaning (Markdown)", configs.Reference},
		{"example", "Print a configuration file of every key at its default, commented (YAML)", configs.Example},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   sub.use,
			Short: sub.short,
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				_, err := io.WriteString(stdout, sub.text())
				return err
			},
		})
	}
	return cmd
}

// identityCmd prints the node's libp2p peer id, creating its identity key
// first if the data directory has none, so operators can list each other's
// nodes in p2p.peers before the first start. With --cosigner it prints
// instead the node's cosigner key (the same Ed25519 key, as a C2SP vkey) for
// the genesis's cosigners list; its name is the peer id unless --name says
// otherwise (the node signs under whatever name the genesis gives its key).
// The default output stays the peer id alone: scripts read it as such.
// versionCmd prints the build and the highest feature level it applies
// (what raft.max_feature_level 0 offers the cluster).
func versionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print this build and the highest feature level it applies",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(stdout, "trustd version %s\nfeature level %d (the highest this build applies; raft.max_feature_level 0 offers it)\n", version.Get().String(), registry.FeatureLevel)
			return err
		},
	}
}

func identityCmd(stdout io.Writer) *cobra.Command {
	var dataDir, name string
	var vkey bool
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Print this node's peer id, or with --cosigner its cosigner vkey (creating its identity key if needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := consensus.LoadOrCreateIdentity(filepath.Join(dataDir, "node.key"))
			if err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return err
			}
			if !vkey {
				_, err = fmt.Fprintln(stdout, id)
				return err
			}
			if name == "" {
				name = id.String()
			}
			k, err := cosign.CosignerKeyOf(name, key)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, k.String())
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", configs.Default().DataDir, "the node's data directory")
	cmd.Flags().BoolVar(&vkey, "cosigner", false, "print the node's cosigner key as a vkey (name+keyid+key) for the genesis's \"cosigners\" list, instead of the peer id")
	cmd.Flags().StringVar(&name, "name", "", "the cosigner key's name with --cosigner (default: the peer id); no spaces or plus signs")
	return cmd
}

// restoreCmd turns a backup (trustctl cluster backup) into the data
// directory of a new one-node cluster that resumes at the backup's index.
func restoreCmd(stdout io.Writer) *cobra.Command {
	var from, dataDir, genesis string
	cmd := &cobra.Command{
		Use:   "restore --from BACKUP --data-dir NEWDIR [--genesis FILE]",
		Short: "Create a new node's data directory from a backup",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || dataDir == "" {
				return fmt.Errorf("--from and --data-dir are required")
			}
			if genesis == "" {
				return fmt.Errorf("--genesis is required: the genesis document of the consortium the backup belongs to")
			}
			raw, err := os.ReadFile(genesis)
			if err != nil {
				return err
			}
			f, err := os.Open(from)
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }() // only read: closing it loses nothing
			index, err := node.RestoreBackup(dataDir, raw, f)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(stdout, "restored registry index %d into %s\nstart it with: trustd --data-dir %s --genesis %s\n"+
				"it runs as a new one-node cluster; add the other nodes with trustctl cluster add-voter\n"+
				"(until it has another voter it refuses to start with p2p.peers or raft.join set; to bring back\n"+
				"one member of a cluster that still runs, do not start this: remove the member with\n"+
				"trustctl cluster remove and add it again, empty, so it catches up from the others)\n", index, dataDir, shellQuote(dataDir), shellQuote(genesis)); err != nil {
				return fmt.Errorf("restored registry index %d into %s, but the summary was not printed: %w", index, dataDir, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "backup file")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "new data directory")
	cmd.Flags().StringVar(&genesis, "genesis", "", "the consortium's genesis document")
	return cmd
}
