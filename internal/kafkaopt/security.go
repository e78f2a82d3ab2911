package kafkaopt

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	awssasl "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/creek-pipeline/creek/internal/auth"
	"github.com/creek-pipeline/creek/internal/awsconfig"
	"github.com/creek-pipeline/creek/internal/pipeline"
)

// Security is how a creek client authenticates to Kafka: TLS with the
// system's or a given authority, a client certificate, and a SASL
// mechanism. Every Kafka-speaking command and the pipeline's Kafka source
// and sink take the same options.
type Security struct {
	TLS          bool
	TLSCA        string
	TLSCert      string
	TLSKey       string
	Mechanism    string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM; "" for none
	User         string
	Password     string // from CREEK_SASL_PASSWORD or the password file, never a flag
	PasswordFile string
}

// The security options of the Kafka source and sink (and, as flags, of the
// admin commands).
var SecurityOptions = []pipeline.Option{
	{Name: "tls", Flag: "tls", Type: pipeline.TypeBool,
		Doc: "Connect to the brokers with TLS, trusting the system's certificate authorities unless --tls-ca is given (e.g. Amazon MSK on port 9094/9096/9098, creek's SASL_SSL listener)."},
	{Name: "tls-ca", Flag: "tls-ca", Env: []string{"CREEK_TLS_CA"}, Type: pipeline.TypeString,
		Doc: "PEM file of the certificate authorities that sign the brokers' certificates (implies --tls)."},
	// The client certificate's variables are not the broker's
	// CREEK_TLS_CERT and CREEK_TLS_KEY: a shell that starts a broker would
	// otherwise make every creek client in it present the broker's
	// certificate and turn TLS on.
	{Name: "tls-cert", Flag: "tls-cert", Env: []string{"CREEK_CLIENT_TLS_CERT"}, Type: pipeline.TypeString,
		Doc: "PEM file with this client's certificate chain, for brokers that require client certificates (mTLS; implies --tls)."},
	{Name: "tls-key", Flag: "tls-key", Env: []string{"CREEK_CLIENT_TLS_KEY"}, Type: pipeline.TypeString,
		Doc: "PEM file with the private key of --tls-cert."},
	{Name: "sasl-mechanism", Flag: "sasl-mechanism", Env: []string{"CREEK_SASL_MECHANISM"}, Type: pipeline.TypeString,
		Enum: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", auth.AWSMSKIAM},
		Doc:  "SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (user and password), or AWS_MSK_IAM (Amazon MSK with IAM: the AWS default credential chain, such as the EC2 instance role). Empty: no SASL."},
	{Name: "sasl-user", Flag: "sasl-user", Env: []string{"CREEK_SASL_USER"}, Type: pipeline.TypeString,
		Doc: "SASL user name (PLAIN, SCRAM)."},
	{Name: "sasl-password", Env: []string{"CREEK_SASL_PASSWORD"}, Type: pipeline.TypeString, Secret: true,
		Doc: "SASL password; from the environment variable or the YAML file, never a flag (which would land in shell history). Prefer --sasl-password-file."},
	{Name: "sasl-password-file", Flag: "sasl-password-file", Env: []string{"CREEK_SASL_PASSWORD_FILE"}, Type: pipeline.TypeString,
		Doc: "File whose first line is the SASL password."},
}

// SecurityFrom reads the security options of a source or sink.
func SecurityFrom(v *pipeline.Values) Security {
	return Security{
		TLS: v.Bool("tls"), TLSCA: v.String("tls-ca"), TLSCert: v.String("tls-cert"), TLSKey: v.String("tls-key"),
		Mechanism: v.String("sasl-mechanism"), User: v.String("sasl-user"),
		Password: v.String("sasl-password"), PasswordFile: v.String("sasl-password-file"),
	}
}

// Opts are the franz-go options for s.
func (s Security) Opts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if s.TLS || s.TLSCA != "" || s.TLSCert != "" {
		cfg, err := auth.ClientTLS(auth.ClientTLSOptions{CAFile: s.TLSCA, CertFile: s.TLSCert, KeyFile: s.TLSKey})
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	} else if s.TLSKey != "" {
		return nil, fmt.Errorf("--tls-key without --tls-cert")
	}
	m, err := s.mechanism()
	if err != nil {
		return nil, err
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// TLSConfig is s's TLS configuration, nil without TLS.
func (s Security) TLSConfig() (*tls.Config, error) {
	if !s.TLS && s.TLSCA == "" && s.TLSCert == "" {
		return nil, nil
	}
	return auth.ClientTLS(auth.ClientTLSOptions{CAFile: s.TLSCA, CertFile: s.TLSCert, KeyFile: s.TLSKey})
}

func (s Security) mechanism() (sasl.Mechanism, error) {
	mech := strings.ToUpper(strings.TrimSpace(s.Mechanism))
	switch mech {
	case "":
		if s.User != "" {
			return nil, fmt.Errorf("--sasl-user needs --sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil, nil
	case auth.AWSMSKIAM:
		return mskIAM(), nil
	}
	if s.User == "" {
		return nil, fmt.Errorf("--sasl-mechanism %s needs --sasl-user", mech)
	}
	password, err := s.password()
	if err != nil {
		return nil, err
	}
	switch mech {
	case "PLAIN":
		return plain.Auth{User: s.User, Pass: password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.User, Pass: password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.User, Pass: password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM", s.Mechanism)
}

// password is the password file's first line, else CREEK_SASL_PASSWORD.
func (s Security) password() (string, error) {
	if s.PasswordFile != "" {
		return ReadPasswordFile(s.PasswordFile)
	}
	if s.Password != "" {
		return s.Password, nil
	}
	if p := os.Getenv("CREEK_SASL_PASSWORD"); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("no SASL password: set CREEK_SASL_PASSWORD or give --sasl-password-file FILE")
}

// ReadPasswordFile reads a password file: its first line, without the newline.
func ReadPasswordFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	p, _, _ := strings.Cut(string(data), "\n")
	p = strings.TrimSuffix(p, "\r")
	if p == "" {
		return "", fmt.Errorf("password file %s: the first line is empty", path)
	}
	return p, nil
}

// mskIAM is Amazon MSK's IAM mechanism with aws-sdk-go-v2's default
// credential chain (environment, profiles, web identity, ECS, the EC2
// instance role), asked at each login so rotated credentials are used.
func mskIAM() sasl.Mechanism {
	return awssasl.ManagedStreamingIAM(func(ctx context.Context) (awssasl.Auth, error) {
		cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
		if err != nil {
			return awssasl.Auth{}, err
		}
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return awssasl.Auth{}, fmt.Errorf("AWS_MSK_IAM: no AWS credentials (on EC2, attach an instance role; elsewhere set AWS_PROFILE or AWS_ACCESS_KEY_ID): %w", err)
		}
		return awssasl.Auth{AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey, SessionToken: creds.SessionToken, UserAgent: "creek"}, nil
	})
}
