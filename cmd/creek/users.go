package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"golang.org/x/term"

	"github.com/creek-pipeline/creek/internal/auth"
	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/kafkaopt"
)

// usersCmd holds what the users subcommands share: the connection flags,
// --output, and --data-dir for a stopped broker.
type usersCmd struct {
	*adminCmd
	dataDir string
}

// userRow is one user's SCRAM credential as listed.
type userRow struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Iterations int    `json:"iterations"`
}

func newUsersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Add, list and delete the SASL/SCRAM users of a broker",
		Long: `Manage the users that log in to creek's broker (or any Kafka cluster) with
SASL SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN. The broker keeps a salted SCRAM
credential per user and mechanism, never the password.

Through the Kafka protocol (--brokers, as kafka-configs --entity-type users
does), or with --data-dir straight into a stopped broker's data folder, as
kafka-storage format --add-scram does before the first start: that is how
the first (admin) user is made. The password comes from --password-file,
from standard input when it is not a terminal, or from a prompt; never from a
flag, which would land in the shell's history.`,
	}
	u := &usersCmd{adminCmd: newAdminCmd(cmd)}
	cmd.PersistentFlags().StringVar(&u.dataDir, "data-dir", "", "change a stopped broker's data folder directly instead of going through --brokers")
	cmd.AddCommand(u.addCommand(), u.listCommand(), u.deleteCommand())
	return cmd
}

func (u *usersCmd) addCommand() *cobra.Command {
	var (
		mechanism    string
		iterations   int
		passwordFile string
	)
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user, or change its password",
		Example: `  creek users add admin --mechanism SCRAM-SHA-512 --password-file admin.pass --data-dir /var/lib/creek
  creek users add alice --brokers broker.example.com:9093 --tls-ca ca.crt \
    --sasl-mechanism SCRAM-SHA-512 --sasl-user admin --sasl-password-file admin.pass
  printf '%s\n' "$ALICE_PASSWORD" | creek users add alice`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := checkUserName(name); err != nil {
				return err
			}
			m, err := auth.ParseMechanism(mechanism)
			if err != nil {
				return usageError{fmt.Errorf("--mechanism: %w", err)}
			}
			if iterations < auth.MinIterations || iterations > auth.MaxIterations {
				return usageError{fmt.Errorf("--iterations %d: want %d to %d", iterations, auth.MinIterations, auth.MaxIterations)}
			}
			if u.dataDir != "" {
				// The store first: a running broker's is locked, and the
				// user should hear so before typing a password.
				err = u.local(func(s *cluster.Security) error {
					password, err := readNewPassword(cmd, passwordFile, name)
					if err != nil {
						return err
					}
					c, err := auth.NewCredential(m, password, iterations)
					if err != nil {
						return err
					}
					return s.PutCredential(name, c)
				})
			} else {
				var password string
				if password, err = readNewPassword(cmd, passwordFile, name); err != nil {
					return err
				}
				err = u.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
					res, err := c.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: name, Mechanism: kadm.ScramMechanism(m), Iterations: int32(iterations), Password: password}})
					if err != nil {
						return scramError(err, "")
					}
					return scramError(res[name].Err, res[name].ErrMessage)
				})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "user %s has a %s credential (%d iterations)\n", name, m, iterations)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&mechanism, "mechanism", auth.ScramSHA512.String(), "SCRAM-SHA-256 or SCRAM-SHA-512 (PLAIN logins check either)")
	f.IntVar(&iterations, "iterations", auth.DefaultIterations, "PBKDF2 iterations of the salted password (4096 to 16384)")
	f.StringVar(&passwordFile, "password-file", "", "file whose first line is the password (else standard input, or a prompt on a terminal)")
	return cmd
}

func (u *usersCmd) listCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list [NAME...]",
		Short:   "List users with their SCRAM mechanisms and iterations",
		Example: "  creek users list\n  creek users list --data-dir ./creek-data --output json",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(u.output); err != nil {
				return err
			}
			var rows []userRow
			var err error
			if u.dataDir != "" {
				err = u.local(func(s *cluster.Security) error {
					for _, uc := range s.Users() {
						if len(args) > 0 && !slices.Contains(args, uc.User) {
							continue
						}
						for _, c := range uc.Credentials {
							rows = append(rows, userRow{User: uc.User, Mechanism: c.Mechanism.String(), Iterations: c.Iterations})
						}
					}
					return nil
				})
			} else {
				err = u.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
					rows, err = describeUsers(ctx, c, args)
					return err
				})
			}
			if err != nil {
				return err
			}
			sort.Slice(rows, func(i, j int) bool {
				return rows[i].User < rows[j].User || rows[i].User == rows[j].User && rows[i].Mechanism < rows[j].Mechanism
			})
			if u.output == "json" {
				if rows == nil {
					rows = []userRow{}
				}
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no users")
				return nil
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "USER\tMECHANISM\tITERATIONS")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%d\n", r.User, r.Mechanism, r.Iterations)
			}
			return w.Flush()
		},
	}
}

func (u *usersCmd) deleteCommand() *cobra.Command {
	var mechanism string
	cmd := &cobra.Command{
		Use:     "delete NAME...",
		Short:   "Delete users' SCRAM credentials (every mechanism unless --mechanism)",
		Example: "  creek users delete alice\n  creek users delete bob --mechanism SCRAM-SHA-256 --data-dir ./creek-data",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var only auth.Mechanism
			if mechanism != "" {
				m, err := auth.ParseMechanism(mechanism)
				if err != nil {
					return usageError{fmt.Errorf("--mechanism: %w", err)}
				}
				only = m
			}
			var deleted []userRow
			var err error
			if u.dataDir != "" {
				err = u.local(func(s *cluster.Security) error {
					for _, name := range args {
						found := false
						for _, m := range auth.Mechanisms {
							if only != 0 && m != only {
								continue
							}
							if _, ok := s.Credential(name, m); !ok {
								continue
							}
							if err := s.DeleteCredential(name, m); err != nil {
								return err
							}
							found = true
							deleted = append(deleted, userRow{User: name, Mechanism: m.String()})
						}
						if !found {
							return fmt.Errorf("user %s has no %s credential", name, mechanismOrAny(only))
						}
					}
					return nil
				})
			} else {
				err = u.kafka.run(cmd, func(ctx context.Context, c *kafkaConn) error {
					rows, err := describeUsers(ctx, c, args)
					if err != nil {
						return err
					}
					var del []kadm.DeleteSCRAM
					for _, name := range args {
						found := false
						for _, r := range rows {
							m, _ := auth.ParseMechanism(r.Mechanism)
							if r.User != name || only != 0 && m != only {
								continue
							}
							found = true
							del = append(del, kadm.DeleteSCRAM{User: name, Mechanism: kadm.ScramMechanism(m)})
							deleted = append(deleted, r)
						}
						if !found {
							return fmt.Errorf("user %s has no %s credential", name, mechanismOrAny(only))
						}
					}
					res, err := c.AlterUserSCRAMs(ctx, del, nil)
					if err != nil {
						return scramError(err, "")
					}
					for _, r := range res.Sorted() {
						if err := scramError(r.Err, r.ErrMessage); err != nil {
							return fmt.Errorf("user %s: %w", r.User, err)
						}
					}
					return nil
				})
			}
			if err != nil {
				return err
			}
			for _, r := range deleted {
				fmt.Fprintf(cmd.ErrOrStderr(), "deleted the %s credential of %s\n", r.Mechanism, r.User)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mechanism, "mechanism", "", "delete only this mechanism's credential (SCRAM-SHA-256 or SCRAM-SHA-512)")
	return cmd
}

// local runs fn on the credential store of --data-dir.
func (u *usersCmd) local(fn func(*cluster.Security) error) error {
	s, err := cluster.OpenSecurity(u.dataDir)
	if err != nil {
		return err
	}
	if err := fn(s); err != nil {
		s.Close()
		return err
	}
	return s.Close()
}

// describeUsers lists users' credentials through DescribeUserScramCredentials.
func describeUsers(ctx context.Context, c *kafkaConn, names []string) ([]userRow, error) {
	res, err := c.DescribeUserSCRAMs(ctx, names...)
	if err != nil {
		return nil, scramError(err, "")
	}
	var rows []userRow
	for _, d := range res.Sorted() {
		if errors.Is(d.Err, kerr.ResourceNotFound) {
			continue // a named user without credentials
		}
		if err := scramError(d.Err, d.ErrMessage); err != nil {
			return nil, fmt.Errorf("user %s: %w", d.User, err)
		}
		for _, ci := range d.CredInfos {
			rows = append(rows, userRow{User: d.User, Mechanism: ci.Mechanism.String(), Iterations: int(ci.Iterations)})
		}
	}
	return rows, nil
}

// scramError adds the broker's message to a SCRAM API error.
func scramError(err error, msg string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, kerr.ClusterAuthorizationFailed) {
		return fmt.Errorf("%w: managing users needs ALTER (or DESCRIBE to list) on the cluster; log in as a super user (--sasl-user)", err)
	}
	if msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

func mechanismOrAny(m auth.Mechanism) string {
	if m == 0 {
		return "SCRAM"
	}
	return m.String()
}

// checkUserName refuses names SCRAM cannot carry or Kafka refuses.
func checkUserName(name string) error {
	if strings.TrimSpace(name) == "" || strings.ContainsAny(name, ",=\x00") {
		return usageError{fmt.Errorf("user name %q: it must not be empty nor contain ',', '=' or NUL", name)}
	}
	return nil
}

// readNewPassword reads a new user's password: the file's first line, else
// standard input's first line when it is not a terminal, else a prompt
// (twice, without echo).
func readNewPassword(cmd *cobra.Command, file, user string) (string, error) {
	if file != "" {
		p, err := kafkaopt.ReadPasswordFile(file)
		if err != nil {
			return "", usageError{fmt.Errorf("--password-file: %w", err)}
		}
		return p, nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		prompt := func(what string) (string, error) {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s for %s: ", what, user)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(cmd.ErrOrStderr())
			return string(b), err
		}
		p, err := prompt("Password")
		if err != nil {
			return "", err
		}
		again, err := prompt("Again")
		if err != nil {
			return "", err
		}
		if p != again {
			return "", errors.New("the two passwords differ; nothing was changed")
		}
		if p == "" {
			return "", errors.New("the password is empty; nothing was changed")
		}
		return p, nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageError{errors.New("no password: give --password-file FILE, pipe it on standard input, or run in a terminal to be asked")}
	}
	return line, nil
}
