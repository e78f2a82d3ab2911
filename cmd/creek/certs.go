package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/creek-pipeline/creek/internal/auth"
)

func newCertsCommand() *cobra.Command {
	var (
		dir  string
		days int
	)
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a certificate authority and broker and client certificates (PEM) for a test setup",
		Long: `Make a small certificate authority and the certificates a TLS setup needs, as
PEM files: ca.crt and ca.key, then NAME.crt (the chain up to the CA) and
NAME.key for a broker or a client. Keys are ECDSA P-256 and readable by the
owner only. For production, use your organisation's authority (or the
openssl commands in docs/security.md); the broker only needs PEM files.`,
		Example: `  creek certs ca --dir certs
  creek certs broker broker --host broker.example.com --host 10.0.1.5 --dir certs
  creek certs client alice --dir certs
  creek broker --listeners SASL_SSL://:9093 --tls-cert certs/broker.crt --tls-key certs/broker.key`,
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", "certs", "folder of the authority and the certificates")
	cmd.PersistentFlags().IntVar(&days, "days", 365, "days the certificate is valid")
	validity := func() (time.Duration, error) {
		if days < 1 {
			return 0, usageError{fmt.Errorf("--days %d: want 1 or more", days)}
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}

	var force bool
	ca := &cobra.Command{
		Use:   "ca",
		Short: "Make the certificate authority (ca.crt, ca.key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := validity()
			if err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(dir, "ca.key")); err == nil && !force {
				return usageError{fmt.Errorf("%s already holds a CA (ca.key); certificates it signed would stop being trusted if it were replaced: give --force to replace it", dir)}
			}
			c, err := auth.NewCA("creek CA", v)
			if err != nil {
				return err
			}
			crt, key, err := auth.WriteFiles(dir, "ca", c.PEM, c.Key)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (give it to clients: --tls-ca, ssl.truststore.location with ssl.truststore.type=PEM, kcat -X ssl.ca.location) and %s (keep it secret)\n", crt, key)
			return nil
		},
	}
	ca.Flags().BoolVar(&force, "force", false, "replace an existing authority")

	issue := func(use, short string, client bool) *cobra.Command {
		var hosts []string
		c := &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				v, err := validity()
				if err != nil {
					return err
				}
				name := args[0]
				if name == "ca" || filepath.Base(name) != name {
					return usageError{fmt.Errorf("certificate name %q: a plain file name other than ca", name)}
				}
				authority, err := auth.LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
				if errors.Is(err, os.ErrNotExist) {
					return usageError{fmt.Errorf("no CA in %s: run `creek certs ca --dir %s` first", dir, dir)}
				}
				if err != nil {
					return err
				}
				if !client && len(hosts) == 0 {
					hosts = []string{"localhost", "127.0.0.1", "::1"}
				}
				certPEM, keyPEM, err := authority.Issue(auth.CertRequest{CommonName: name, Hosts: hosts, Client: client, NotAfter: time.Now().Add(v)})
				if err != nil {
					return err
				}
				crt, key, err := auth.WriteFiles(dir, name, certPEM, keyPEM)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s and %s (subject CN=%s,O=creek)\n", crt, key, name)
				return nil
			},
		}
		if !client {
			c.Flags().StringArrayVar(&hosts, "host", nil, "DNS name or IP address clients reach the broker by (repeatable; default localhost, 127.0.0.1, ::1)")
		}
		return c
	}
	cmd.AddCommand(ca,
		issue("broker", "Make a broker (server) certificate signed by the CA", false),
		issue("client", "Make a client certificate (mTLS; the principal is User:CN=NAME,O=creek) signed by the CA", true))
	return cmd
}
