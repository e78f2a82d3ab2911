// Package s3test starts a real S3 server for tests: versitygw (an
// Apache-2.0 S3 gateway) over a temporary folder, built once by
// scripts/test-deps.sh into creek's cache outside the repository. A test
// that finds no versitygw skips with one line saying how to get it.
package s3test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/creek-pipeline/creek/internal/s3client"
)

// Version is the versitygw release the tests run against.
const Version = "v1.8.0"

// Binary is where versitygw is: $CREEK_VERSITYGW, else creek's cache
// (${XDG_CACHE_HOME:-~/.cache}/creek/bin/versitygw), else the PATH.
func Binary() (string, error) {
	if p := os.Getenv("CREEK_VERSITYGW"); p != "" {
		return p, nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "creek", "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("versitygw not found in %s: run scripts/test-deps.sh (or make test-deps), which builds it with go install github.com/versity/versitygw/cmd/versitygw@%s", p, Version)
}

// Server is a running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // the posix backend's folder: one folder per bucket
	Region    string
	cmd       *exec.Cmd
}

// Start runs versitygw (in us-east-1) for the test and stops it when the
// test ends; it skips the test when versitygw is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartRegion(t, "us-east-1")
}

// StartRegion is Start with the server in another region: it refuses
// requests signed for any other.
func StartRegion(t testing.TB, region string) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Skip(err.Error())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{Endpoint: "http://" + addr, AccessKey: "creektestkey", SecretKey: "creek-test-secret-key", Dir: t.TempDir(), Region: region}
	// --keep-alive as S3 does: without it versitygw closes the connection
	// after every answer.
	s.cmd = exec.Command(bin, "--keep-alive", "--port", addr, "--region", region, "posix", s.Dir)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	logPath := filepath.Join(t.TempDir(), "versitygw.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-exited
		logFile.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("versitygw exited at start: %v\n%s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer on %s within 20 s", addr)
		}
	}
}

// Env is the environment that points AWS clients (creek, aws cli, boto3)
// at the server with its keys, and at nothing else: no profile, no
// instance metadata.
func (s *Server) Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_ACCESS_KEY_ID="+s.AccessKey, "AWS_SECRET_ACCESS_KEY="+s.SecretKey,
		"AWS_REGION="+s.Region, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

// SetEnv puts Env's AWS variables into the test process's environment.
func (s *Server) SetEnv(t testing.TB) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, kv := range s.Env() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, v)
		}
	}
}

// Client is a creek S3 client for the server (call SetEnv first).
func (s *Server) Client(t testing.TB) *s3client.Client {
	t.Helper()
	c, err := s3client.New(context.Background(), s3client.Options{Endpoint: s.Endpoint, Region: s.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MakeBucket creates a bucket.
func (s *Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if s.Region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(s.Region)}
	}
	if _, err := s.Client(t).CreateBucket(context.Background(), in); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// Keys lists every object of a bucket under prefix, with its size.
func (s *Server) Keys(t testing.TB, bucket, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(s.Client(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list s3://%s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	return out
}

// ParquetPython is a Python with pyarrow and boto3: the virtual
// environment scripts/test-deps.sh makes in creek's cache (pyarrow from
// PyPI, boto3 from Debian through the system site packages). It skips the
// test when there is none.
func ParquetPython(t testing.TB) string {
	t.Helper()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	py := filepath.Join(cache, "creek", "venv", "bin", "python3")
	if err := exec.Command(py, "-c", "import pyarrow.parquet, boto3").Run(); err != nil {
		t.Skipf("no Python with pyarrow and boto3 at %s (scripts/test-deps.sh makes it): %v", py, err)
	}
	return py
}
