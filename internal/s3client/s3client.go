// Package s3client builds S3 clients for creek's S3 sink and `creek s3`:
// aws-sdk-go-v2 with its default credential chain (environment, shared
// config and profiles, web identity, ECS, the EC2 instance role through
// IMDSv2), retries with back-off for throttling and network errors, and
// path-style addressing for S3-compatible stores. It also turns S3's errors
// into one line that says what went wrong and what to do, and streams
// objects through multipart upload (writer.go). The configuration and its
// credential chain are internal/awsconfig's, shared with the DynamoDB sink.
package s3client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/creek-pipeline/creek/internal/awsconfig"
)

// Options choose the account, region and endpoint.
type Options = awsconfig.Options

// DefaultRegion is used when nothing names a region, as aws cli does.
const DefaultRegion = awsconfig.DefaultRegion

// Client is an S3 client and what it was built with.
type Client struct {
	*s3.Client
	Region   string
	Endpoint string
}

// New builds a client. Credentials are looked up when first needed, so a
// missing credential shows on the first request (see Explain).
func New(ctx context.Context, o Options) (*Client, error) {
	cfg, err := awsconfig.Load(ctx, o)
	if err != nil {
		return nil, err
	}
	cl := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
			so.UsePathStyle = true
			// S3-compatible stores do not all know the newer default
			// checksums; send and check them only where S3 requires.
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	return &Client{Client: cl, Region: cfg.Region, Endpoint: o.Endpoint}, nil
}

// DeletePrefix deletes every object whose key starts with prefix and
// returns how many there were.
func (c *Client) DeletePrefix(ctx context.Context, bucket, prefix string) (int, error) {
	n := 0
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return n, c.Explain(err, bucket)
		}
		if len(page.Contents) == 0 {
			continue
		}
		del := &types.Delete{Quiet: aws.Bool(true)}
		for _, o := range page.Contents {
			del.Objects = append(del.Objects, types.ObjectIdentifier{Key: o.Key})
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: del})
		if err != nil {
			return n, c.Explain(err, bucket)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return n, fmt.Errorf("delete %s: %s", aws.ToString(e.Key), aws.ToString(e.Message))
		}
		n += len(page.Contents)
	}
	return n, nil
}

// CheckBucket asks for the bucket, so a sink fails at start, in one line,
// when the bucket, the credentials or the region are wrong.
func (c *Client) CheckBucket(ctx context.Context, bucket string) error {
	_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusBadRequest && re.Response.Header.Get("X-Amz-Bucket-Region") == "" {
		// An answer to HEAD has no body to say what was wrong; a listing
		// of one key brings the error code.
		_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(1)})
	}
	return c.Explain(err, bucket)
}

// ErrRefused marks errors where S3 refused the credentials.
var ErrRefused = errors.New("refused")

// Explain turns an S3 error into one line saying which problem it is and
// what to do: no such bucket, refused or missing credentials, the bucket in
// another region, an endpoint that does not answer. Other errors are
// returned with the bucket named.
func (c *Client) Explain(err error, bucket string) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	code, status, bucketRegion := "", 0, ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		status = re.Response.StatusCode
		bucketRegion = re.Response.Header.Get("X-Amz-Bucket-Region")
	}
	where := "s3://" + bucket
	if c.Endpoint != "" {
		where += " at " + c.Endpoint
	}
	switch {
	case code == "NoSuchBucket" || (code == "NotFound" && status == http.StatusNotFound) || (status == http.StatusNotFound && code == ""):
		return fmt.Errorf("bucket %s does not exist: create it with `creek s3 mb s3://%s --region %s`, or check the bucket name", where, bucket, c.Region)
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || code == "IncorrectEndpoint" || status == http.StatusMovedPermanently ||
		(bucketRegion != "" && bucketRegion != c.Region):
		if bucketRegion == "" {
			bucketRegion = regionFromMessage(err)
		}
		if bucketRegion != "" {
			return fmt.Errorf("bucket %s is in region %s, not %s: use --region %s", where, bucketRegion, c.Region, bucketRegion)
		}
		return fmt.Errorf("bucket %s is not in region %s: give its region with --region", where, c.Region)
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "ExpiredToken" || code == "InvalidToken" ||
		code == "TokenRefreshRequired" || code == "AccessDenied" || code == "Forbidden" || status == http.StatusForbidden:
		if code == "" {
			code = "403 Forbidden"
		}
		return fmt.Errorf("S3 refused the credentials for %s (%s): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the --profile, or the instance role's policy: %w", where, code, ErrRefused)
	case awsconfig.IsNoCredentials(err):
		return fmt.Errorf("no AWS credentials for %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile with --profile, or run on EC2 with an instance role (%v)", where, awsconfig.RootCause(err))
	case awsconfig.IsNetwork(err):
		return fmt.Errorf("cannot reach S3 for %s (retried): %v; check the network or --endpoint-url", where, awsconfig.RootCause(err))
	}
	return fmt.Errorf("%s: %w", where, err)
}

// regionFromMessage finds the expected region in S3's
// AuthorizationHeaderMalformed message ("... expecting 'eu-west-1'").
func regionFromMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "expecting '"); i >= 0 {
		rest := msg[i+len("expecting '"):]
		if j := strings.IndexByte(rest, '\''); j > 0 {
			return rest[:j]
		}
	}
	return ""
}
