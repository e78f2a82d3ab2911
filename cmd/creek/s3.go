package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/creek-pipeline/creek/internal/s3client"
	"github.com/creek-pipeline/creek/internal/s3sync"
)

// s3Cmd holds the flags every `creek s3` command shares, named as aws
// cli's global options.
type s3Cmd struct {
	opts s3client.Options
}

func newS3Command() *cobra.Command {
	c := &s3Cmd{}
	cmd := &cobra.Command{
		Use:   "s3",
		Short: "The seed's aws s3 commands (mb, ls, cp, sync) without installing aws cli",
		Long: `Make buckets, list them and copy files to and from them, with aws cli's
arguments, flags and output, on aws-sdk-go-v2:

  creek s3 mb s3://BUCKET [--region R]
  creek s3 ls [s3://BUCKET[/PREFIX]] [--recursive]
  creek s3 cp SRC DST [--recursive]        (a file, an object, or - for stdin/stdout)
  creek s3 sync SRC DST [--delete] [--exclude P] [--include P] [--dryrun] [--size-only] [--exact-timestamps]

Credentials come from AWS's default chain: AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, the shared config and credentials files (--profile),
web identity, ECS, and on EC2 the instance role through IMDSv2, so on a
server with a role attached nothing has to be configured. The region is
--region, else AWS_REGION or the profile's, else the EC2 instance's, else
us-east-1. --endpoint-url points at an S3-compatible store (path-style).`,
		Example: `  creek s3 ls
  export bucketname=hg-myclass
  creek s3 mb s3://$bucketname --region ap-northeast-2
  creek s3 sync . s3://$bucketname --exclude '.git/*'
  creek s3 ls s3://$bucketname --recursive`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.opts.Region, "region", "", "the bucket's region (default: AWS_REGION, the profile's, the EC2 instance's, or us-east-1)")
	pf.StringVar(&c.opts.Endpoint, "endpoint-url", "", "URL of an S3-compatible store, addressed path-style")
	pf.StringVar(&c.opts.Profile, "profile", "", "shared-config profile to take credentials and region from")
	cmd.AddCommand(c.mbCommand(), c.lsCommand(), c.cpCommand(), c.syncCommand())
	return cmd
}

// connect returns a context cancelled by Ctrl-C and a client.
func (c *s3Cmd) connect() (context.Context, context.CancelFunc, *s3client.Client, error) {
	if c.opts.Endpoint == "" {
		c.opts.Endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
	}
	ctx, cancel := signalContext()
	cl, err := s3client.New(ctx, c.opts)
	return ctx, cancel, cl, err
}

func parseS3URL(arg string) (s3sync.Location, error) {
	l, err := s3sync.ParseLocation(arg)
	if err != nil {
		return l, usageError{err}
	}
	if !l.IsS3() {
		return l, usageError{fmt.Errorf("%q: want s3://BUCKET", arg)}
	}
	return l, nil
}

func (c *s3Cmd) mbCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "mb s3://BUCKET",
		Short: "Make a bucket (in --region)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := parseS3URL(args[0])
			if err != nil {
				return err
			}
			ctx, cancel, cl, err := c.connect()
			defer cancel()
			if err != nil {
				return err
			}
			in := &s3.CreateBucketInput{Bucket: aws.String(l.Bucket)}
			if cl.Region != "us-east-1" {
				// Without a location S3 makes the bucket in us-east-1,
				// and reading it from Seoul then costs transfer fees.
				in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(cl.Region)}
			}
			if _, err := cl.CreateBucket(ctx, in); err != nil {
				var ae smithy.APIError
				if errors.As(err, &ae) && (ae.ErrorCode() == "BucketAlreadyOwnedByYou" || ae.ErrorCode() == "BucketAlreadyExists") {
					return fmt.Errorf("make_bucket failed: s3://%s: %s (bucket names are global: choose another, or use the one you have)", l.Bucket, ae.ErrorCode())
				}
				return fmt.Errorf("make_bucket failed: %w", cl.Explain(err, l.Bucket))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "make_bucket: %s\n", l.Bucket)
			return nil
		},
	}
}

func (c *s3Cmd) lsCommand() *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "ls [s3://BUCKET[/PREFIX]]",
		Short: "List buckets, or the folders and objects under a prefix",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel, cl, err := c.connect()
			defer cancel()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 0 || args[0] == "s3://" {
				return listBuckets(ctx, cl, out)
			}
			l, err := parseS3URL(args[0])
			if err != nil {
				return err
			}
			return listObjects(ctx, cl, l, recursive, out)
		},
	}
	cmd.Flags().BoolVar(&recursive, "recursive", false, "list every object under the prefix, not one folder level")
	return cmd
}

// lsTime is how aws cli shows a time: local, to the second.
func lsTime(t *time.Time) string { return aws.ToTime(t).Local().Format("2006-01-02 15:04:05") }

func listBuckets(ctx context.Context, cl *s3client.Client, out io.Writer) error {
	p := s3.NewListBucketsPaginator(cl, &s3.ListBucketsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return cl.Explain(err, "")
		}
		for _, b := range page.Buckets {
			fmt.Fprintf(out, "%s %s\n", lsTime(b.CreationDate), aws.ToString(b.Name))
		}
	}
	return nil
}

func listObjects(ctx context.Context, cl *s3client.Client, l s3sync.Location, recursive bool, out io.Writer) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), Prefix: aws.String(l.Key)}
	if !recursive {
		in.Delimiter = aws.String("/")
	}
	p := s3.NewListObjectsV2Paginator(cl, in)
	listed := false
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return cl.Explain(err, l.Bucket)
		}
		// As aws cli: folders by their last name, objects by their base
		// name, or (--recursive) by their whole key.
		for _, cp := range page.CommonPrefixes {
			parts := strings.Split(aws.ToString(cp.Prefix), "/")
			fmt.Fprintf(out, "%30s %s/\n", "PRE", parts[len(parts)-2])
			listed = true
		}
		for _, o := range page.Contents {
			name := aws.ToString(o.Key)
			if !recursive {
				name = name[strings.LastIndex(name, "/")+1:]
			}
			fmt.Fprintf(out, "%s %10d %s\n", lsTime(o.LastModified), aws.ToInt64(o.Size), name)
			listed = true
		}
	}
	if !listed {
		return fmt.Errorf("nothing in s3://%s/%s", l.Bucket, l.Key)
	}
	return nil
}

// filterFlag is --exclude or --include: both append to one list, so the
// rules keep the order they were given in, which decides.
type filterFlag struct {
	filter  *s3sync.Filter
	include bool
}

func (f filterFlag) String() string { return "" }
func (f filterFlag) Type() string   { return "pattern" }
func (f filterFlag) Set(p string) error {
	if f.include {
		f.filter.Include(p)
	} else {
		f.filter.Exclude(p)
	}
	return nil
}

// transferFlags are the flags sync and cp --recursive share.
func transferFlags(cmd *cobra.Command, o *s3sync.Options) {
	f := cmd.Flags()
	f.Var(filterFlag{&o.Filter, false}, "exclude", "skip files matching this pattern (* ? [..], matched below the source folder; repeatable; the last matching --exclude/--include decides)")
	f.Var(filterFlag{&o.Filter, true}, "include", "do not skip files matching this pattern (after an --exclude that matched them)")
	f.BoolVar(&o.DryRun, "dryrun", false, "show what would be done, do nothing")
	f.IntVar(&o.Workers, "workers", 10, "parallel transfers")
}

func (c *s3Cmd) syncCommand() *cobra.Command {
	var o s3sync.Options
	cmd := &cobra.Command{
		Use:   "sync SRC DST",
		Short: "Copy new and changed files between a folder and a bucket, like aws s3 sync",
		Long: `Copy files from SRC to DST, where one is a local folder and the other
s3://BUCKET[/PREFIX], with aws s3 sync's rules: a file is copied when it is
missing at DST, when the sizes differ, or when the time says so (uploading:
the local file is newer than the object; downloading: the local copy is newer
than the object; downloads take the object's time, so a second run copies
nothing). --size-only compares sizes alone; --exact-timestamps, downloading,
also copies same-sized files whose times differ. --delete removes files at DST
that SRC lacks, except those the filters skip.`,
		Example: `  creek s3 sync . s3://$bucketname --exclude '.git/*'
  creek s3 sync s3://$bucketname/logs ./logs --delete
  creek s3 sync ./site s3://site --exclude '*' --include '*.html' --dryrun`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.transfer(cmd, args, o, "sync")
		},
	}
	transferFlags(cmd, &o)
	f := cmd.Flags()
	f.BoolVar(&o.Delete, "delete", false, "delete files at DST that SRC does not have (filtered ones stay)")
	f.BoolVar(&o.SizeOnly, "size-only", false, "copy only files whose sizes differ")
	f.BoolVar(&o.ExactTimestamps, "exact-timestamps", false, "downloading: copy same-sized files unless their times are equal")
	return cmd
}

func (c *s3Cmd) cpCommand() *cobra.Command {
	var o s3sync.Options
	var recursive bool
	cmd := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy a file or an object (or a folder with --recursive)",
		Long: `Copy a local file to a bucket, an object to a local file, or an object to
another key; - reads standard input or writes standard output. A DST that ends
in / (or a local folder) takes SRC's name. With --recursive, copy every file
below a folder or prefix (filtered by --exclude/--include).`,
		Example: `  creek s3 cp access.log s3://$bucketname/logs/
  creek s3 cp s3://$bucketname/logs/access.log -
  creek s3 cp ./logs s3://$bucketname/logs --recursive --exclude '*.tmp'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if recursive {
				o.CopyAll = true
				return c.transfer(cmd, args, o, "cp")
			}
			return c.copyOne(cmd, args, o.DryRun)
		},
	}
	transferFlags(cmd, &o)
	cmd.Flags().BoolVar(&recursive, "recursive", false, "copy every file below SRC")
	return cmd
}

// parseSrcDst reads the SRC and DST arguments.
func parseSrcDst(args []string) (src, dst s3sync.Location, err error) {
	if src, err = s3sync.ParseLocation(args[0]); err == nil {
		dst, err = s3sync.ParseLocation(args[1])
	}
	if err != nil {
		err = usageError{err}
	}
	return src, dst, err
}

// transfer runs sync (or cp --recursive) with progress on a terminal and
// a summary line at the end.
func (c *s3Cmd) transfer(cmd *cobra.Command, args []string, o s3sync.Options, verb string) error {
	src, dst, err := parseSrcDst(args)
	if err != nil {
		return err
	}
	if src.IsS3() == dst.IsS3() {
		return usageError{fmt.Errorf("%s copies between a local folder and s3://BUCKET[/PREFIX]; give one of each", verb)}
	}
	ctx, cancel, cl, err := c.connect()
	defer cancel()
	if err != nil {
		return err
	}
	o.Out, o.Errors = cmd.OutOrStdout(), cmd.ErrOrStderr()
	stderr := cmd.ErrOrStderr()
	tty := false
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = true
		o.Progress = func(p s3sync.Progress) {
			fmt.Fprintf(stderr, "\r\x1b[K%d of %d files, %.1f of %.1f MiB", p.Files, p.TotalFiles, float64(p.Bytes)/(1<<20), float64(p.TotalBytes)/(1<<20))
		}
		// Lines and progress share the terminal: clear the progress first.
		o.Out = clearingWriter{o.Out, stderr}
	}
	sum, err := s3sync.Sync(ctx, cl, src, dst, o)
	if tty {
		fmt.Fprint(stderr, "\r\x1b[K")
	}
	if sum.Elapsed > 0 {
		prefix := verb + ": "
		if o.DryRun {
			prefix = "(dryrun) " + prefix
		}
		fmt.Fprintln(stderr, prefix+sum.String())
	}
	if errors.Is(err, s3sync.ErrFailed) {
		return fmt.Errorf("%d of the files were not copied (see above)", sum.Failed)
	}
	return err
}

// clearingWriter clears the progress line before each line of output.
type clearingWriter struct {
	w        io.Writer
	terminal io.Writer
}

func (c clearingWriter) Write(p []byte) (int, error) {
	fmt.Fprint(c.terminal, "\r\x1b[K")
	return c.w.Write(p)
}

// copyOne is cp of one file or object.
func (c *s3Cmd) copyOne(cmd *cobra.Command, args []string, dryRun bool) error {
	src, dst, err := parseSrcDst(args)
	if err != nil {
		return err
	}
	ctx, cancel, cl, err := c.connect()
	defer cancel()
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	report := func(verb, from, to string) {
		if dryRun {
			verb = "(dryrun) " + verb
		}
		if to != "-" {
			fmt.Fprintf(out, "%s: %s to %s\n", verb, from, to)
		}
	}
	switch {
	case !src.IsS3() && dst.IsS3():
		key := dst.Key
		if key == "" || strings.HasSuffix(key, "/") {
			if src.Path == "-" {
				return usageError{errors.New("cp - s3://BUCKET/KEY: give the object's key")}
			}
			key += filepath.Base(src.Path)
		}
		to := "s3://" + dst.Bucket + "/" + key
		if dryRun {
			report("upload", src.Path, to)
			return nil
		}
		var in io.Reader = cmd.InOrStdin()
		if src.Path != "-" {
			f, err := os.Open(src.Path)
			if err != nil {
				return err
			}
			defer f.Close()
			if st, err := f.Stat(); err == nil && st.IsDir() {
				return usageError{fmt.Errorf("%s is a folder: use --recursive, or sync", src.Path)}
			}
			in = f
		}
		w := &s3client.ObjectWriter{Client: cl, Bucket: dst.Bucket, Key: key, PartSize: 8 << 20, ContentType: mime.TypeByExtension(path.Ext(key))}
		if err := s3sync.UploadFile(ctx, w, in); err != nil {
			return fmt.Errorf("upload failed: %s to %s %w", src.Path, to, err)
		}
		report("upload", src.Path, to)
	case src.IsS3() && !dst.IsS3():
		from := "s3://" + src.Bucket + "/" + src.Key
		if src.Key == "" || strings.HasSuffix(src.Key, "/") {
			return usageError{fmt.Errorf("%s is a prefix: use --recursive, or sync", from)}
		}
		if dst.Path == "-" {
			o, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(src.Bucket), Key: aws.String(src.Key)})
			if err != nil {
				return cl.Explain(err, src.Bucket)
			}
			defer o.Body.Close()
			_, err = io.Copy(out, o.Body)
			return err
		}
		target := dst.Path
		if st, err := os.Stat(target); (err == nil && st.IsDir()) || strings.HasSuffix(target, "/") {
			target = filepath.Join(target, path.Base(src.Key))
		}
		if !dryRun {
			if err := s3sync.DownloadFile(ctx, cl, src.Bucket, src.Key, target); err != nil {
				return fmt.Errorf("download failed: %s to %s %w", from, target, err)
			}
		}
		report("download", from, target)
	case src.IsS3() && dst.IsS3():
		key := dst.Key
		if key == "" || strings.HasSuffix(key, "/") {
			key += path.Base(src.Key)
		}
		from, to := "s3://"+src.Bucket+"/"+src.Key, "s3://"+dst.Bucket+"/"+key
		if !dryRun {
			_, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst.Bucket), Key: aws.String(key),
				CopySource: aws.String(src.Bucket + "/" + src.Key)})
			if err != nil {
				return fmt.Errorf("copy failed: %s to %s %w", from, to, cl.Explain(err, dst.Bucket))
			}
		}
		report("copy", from, to)
	default:
		return usageError{errors.New("cp needs an s3://BUCKET/KEY on at least one side (for two local files, use cp itself)")}
	}
	return nil
}
