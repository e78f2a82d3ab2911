// Package awsconfig loads the AWS configuration that creek's AWS clients
// (the S3 sink and `creek s3`, the DynamoDB sink) share: aws-sdk-go-v2's
// default credential chain (environment, shared config and profiles, web
// identity, ECS, the EC2 instance role through IMDSv2, so a server with a
// role attached needs nothing configured), the region (given, else
// AWS_REGION or the profile's, else the EC2 instance's, else us-east-1)
// and retries with back-off for throttling and network errors. It also
// tells the errors that need the same explanation everywhere: no
// credentials, a network that does not answer.
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Options choose the account, region and endpoint.
type Options struct {
	Region   string // "" for the configured one (AWS_REGION, the profile, the EC2 instance's)
	Endpoint string // a compatible store's URL; "" for AWS
	Profile  string // a shared-config profile; "" for AWS_PROFILE or the default
	// MaxAttempts bounds the SDK's own tries of a request (0: 10, about
	// two minutes of back-off). A sink that waits on its own takes fewer.
	MaxAttempts int
}

// maxIdleConns is how many connections to a host are kept for reuse.
const maxIdleConns = 256

// DefaultRegion is used when nothing names a region, as aws cli does.
const DefaultRegion = "us-east-1"

// Load builds the configuration. Credentials are looked up when first
// needed, so a missing credential shows on the first request.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	attempts := o.MaxAttempts
	if attempts <= 0 {
		attempts = 10
	}
	opts := []func(*config.LoadOptions) error{
		// The S3 sink uploads many objects at once (one per busy
		// partition): with the SDK's 10 idle connections per host, nearly
		// every upload dialled a new one (a thousand for a thousand objects).
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = maxIdleConns
			t.MaxIdleConnsPerHost = maxIdleConns
		})),
		config.WithRetryer(func() aws.Retryer {
			// Throttling and network errors are retried with jittered
			// back-off; no retry quota, so a long hiccup does not fail
			// requests at once.
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = attempts
				so.MaxBackoff = 20 * time.Second
				so.RateLimiter = ratelimit.None
			})
		}),
	}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Endpoint == "" && o.Region == "" {
		// On EC2 without a configured region, the instance's own (as the
		// seed's server in ap-northeast-2 expects).
		opts = append(opts, config.WithEC2IMDSRegion())
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	return cfg, nil
}

// IsNoCredentials tells an error of the credential chain finding nothing.
func IsNoCredentials(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "failed to retrieve credentials") || strings.Contains(msg, "no EC2 IMDS role found") ||
		strings.Contains(msg, "static credentials are empty") || strings.Contains(msg, "anonymous credentials")
}

// IsNetwork tells an error of a connection that failed or timed out.
func IsNetwork(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout())
}

// RootCause is the innermost error, without the SDK's layers.
func RootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
