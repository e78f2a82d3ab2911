// Package s3sync is `creek s3 sync` and `creek s3 cp --recursive`: aws
// cli's s3 sync between a local folder and a bucket, in either direction,
// with its semantics. A file is copied when it is missing at the
// destination, when the sizes differ, or when the time says so: on upload
// when the local file is newer than the object, on download when the local
// copy is newer than the object (a download sets the local file's time to
// the object's, so a second run copies nothing). --size-only compares
// sizes alone, --exact-timestamps makes a download copy any same-sized
// file whose time differs. --delete removes destination files that the
// source lacks, except those the filters exclude.
package s3sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/creek-pipeline/creek/internal/s3client"
)

// Location is a local path or s3://bucket/key.
type Location struct {
	Bucket, Key string // for s3://
	Path        string // for a local path, as given
}

// IsS3 says whether the location is in a bucket.
func (l Location) IsS3() bool { return l.Bucket != "" }

func (l Location) String() string {
	if l.IsS3() {
		return "s3://" + l.Bucket + "/" + l.Key
	}
	return l.Path
}

// ParseLocation reads an argument: s3://BUCKET[/KEY] or a local path.
func ParseLocation(s string) (Location, error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		if s == "" {
			return Location{}, errors.New("an empty path")
		}
		return Location{Path: s}, nil
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return Location{}, fmt.Errorf("%s: no bucket name after s3://", s)
	}
	return Location{Bucket: bucket, Key: key}, nil
}

// Options are sync's flags.
type Options struct {
	Filter          Filter
	Delete          bool
	DryRun          bool
	SizeOnly        bool
	ExactTimestamps bool
	CopyAll         bool // cp --recursive: copy every file, compare nothing
	Workers         int  // parallel transfers; 0 for 10, as aws cli
	PartSize        int  // multipart part size; 0 for 8 MiB, as aws cli

	// Out gets aws cli's lines ("upload: ./a.txt to s3://b/a.txt");
	// failures go to Errors.
	Out, Errors io.Writer
	// Progress, when set, is called as transfers finish.
	Progress func(Progress)
}

// Progress is how far a sync is.
type Progress struct {
	Files, TotalFiles int
	Bytes, TotalBytes int64
}

// Summary is what a sync did.
type Summary struct {
	Uploaded, Downloaded, Deleted, Failed int
	Bytes                                 int64
	Elapsed                               time.Duration
}

func (s Summary) String() string {
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{s.Uploaded, "uploaded"}, {s.Downloaded, "downloaded"}, {s.Deleted, "deleted"}, {s.Failed, "failed"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	if len(parts) == 0 {
		parts = []string{"nothing to copy"}
	}
	return fmt.Sprintf("%s (%s in %.1f s)", strings.Join(parts, ", "), humanBytes(s.Bytes), s.Elapsed.Seconds())
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// file is one file or object, by its path below the sync's root.
type file struct {
	rel  string
	size int64
	mod  time.Time
	abs  string // local files: absolute path
	key  string // objects: key
}

type action struct {
	kind     string // upload, download, delete
	src, dst file
}

// ErrFailed is returned when some transfers failed (each was reported).
var ErrFailed = errors.New("some files were not copied")

// Sync makes dst like src; one of them is local, the other in a bucket.
func Sync(ctx context.Context, cl *s3client.Client, src, dst Location, o Options) (Summary, error) {
	start := time.Now()
	if src.IsS3() == dst.IsS3() {
		return Summary{}, errors.New("sync copies between a local folder and s3://BUCKET/PREFIX; give one of each")
	}
	if o.Workers <= 0 {
		o.Workers = 10
	}
	if o.PartSize <= 0 {
		o.PartSize = 8 << 20
	}
	srcFiles, err := list(ctx, cl, src, &o.Filter)
	if err != nil {
		return Summary{}, err
	}
	var dstFiles []file
	if !o.CopyAll || o.Delete {
		if dstFiles, err = list(ctx, cl, dst, &o.Filter); err != nil {
			return Summary{}, err
		}
	} else if dst.IsS3() {
		if err := cl.CheckBucket(ctx, dst.Bucket); err != nil {
			return Summary{}, err
		}
	}
	actions := plan(srcFiles, dstFiles, src.IsS3(), o)
	r := &runner{cl: cl, src: src, dst: dst, o: o}
	r.run(ctx, actions)
	r.sum.Elapsed = time.Since(start)
	if r.sum.Failed > 0 {
		return r.sum, ErrFailed
	}
	return r.sum, ctx.Err()
}

// plan merges the sorted listings as aws cli's comparator does.
func plan(src, dst []file, download bool, o Options) []action {
	kind := "upload"
	if download {
		kind = "download"
	}
	dstByRel := make(map[string]file, len(dst))
	for _, f := range dst {
		dstByRel[f.rel] = f
	}
	var out []action
	inSrc := make(map[string]bool, len(src))
	for _, s := range src {
		inSrc[s.rel] = true
		d, exists := dstByRel[s.rel]
		if exists && !o.CopyAll && !shouldSync(s, d, download, o) {
			continue
		}
		out = append(out, action{kind: kind, src: s, dst: d})
	}
	if o.Delete {
		for _, d := range dst {
			if !inSrc[d.rel] {
				out = append(out, action{kind: "delete", dst: d})
			}
		}
	}
	// In path order, as aws cli reports a dry run.
	sort.SliceStable(out, func(i, j int) bool { return relOf(out[i]) < relOf(out[j]) })
	return out
}

func relOf(a action) string {
	if a.kind == "delete" {
		return a.dst.rel
	}
	return a.src.rel
}

// shouldSync is aws cli's SizeAndLastModifiedSync (or SizeOnlySync,
// ExactTimestampsSync) for a file present at both ends.
func shouldSync(src, dst file, download bool, o Options) bool {
	if src.size != dst.size {
		return true
	}
	if o.SizeOnly {
		return false
	}
	delta := dst.mod.Sub(src.mod)
	if !download {
		return delta < 0 // the local file is newer than the object
	}
	if o.ExactTimestamps {
		return delta != 0
	}
	return delta > 0 // the local copy is newer than the object
}

// list lists a location's files below it, filtered.
func list(ctx context.Context, cl *s3client.Client, l Location, f *Filter) ([]file, error) {
	if l.IsS3() {
		return listBucket(ctx, cl, l, f)
	}
	return listLocal(l.Path, f)
}

// dirPrefix is a key prefix as a folder: "p" and "p/" both list under "p/".
func dirPrefix(key string) string {
	if key == "" || strings.HasSuffix(key, "/") {
		return key
	}
	return key + "/"
}

func listBucket(ctx context.Context, cl *s3client.Client, l Location, f *Filter) ([]file, error) {
	prefix := dirPrefix(l.Key)
	var out []file
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, cl.Explain(err, l.Bucket)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			rel := strings.TrimPrefix(key, prefix)
			if rel == "" || strings.HasSuffix(key, "/") { // folder markers
				continue
			}
			if f.Included(rel, "") {
				out = append(out, file{rel: rel, size: aws.ToInt64(o.Size), mod: aws.ToTime(o.LastModified), key: key})
			}
		}
	}
	return out, nil
}

// listLocal walks a folder, following symbolic links as aws cli does, and
// skipping what is not a regular file.
func listLocal(root string, f *Filter) ([]file, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a destination folder that does not exist yet
	}
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", root)
	}
	var out []file
	var walk func(dir, rel string, depth int) error
	walk = func(dir, rel string, depth int) error {
		if depth > 64 {
			return fmt.Errorf("%s: folders nested more than 64 deep (a symbolic link loop?)", dir)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			r := path.Join(rel, e.Name())
			st, err := os.Stat(p) // follows links
			if err != nil {
				continue // a dangling link, as aws cli skips it
			}
			switch {
			case st.IsDir():
				if err := walk(p, r, depth+1); err != nil {
					return err
				}
			case st.Mode().IsRegular() && f.Included(r, p):
				out = append(out, file{rel: r, size: st.Size(), mod: st.ModTime(), abs: p})
			}
		}
		return nil
	}
	if err := walk(abs, "", 0); err != nil {
		return nil, err
	}
	return out, nil
}

// runner carries out a plan with parallel transfers.
type runner struct {
	cl       *s3client.Client
	src, dst Location
	o        Options
	mu       sync.Mutex
	sum      Summary
	done     atomic.Int64
	doneB    atomic.Int64
	total    int
	totalB   int64
}

func (r *runner) run(ctx context.Context, actions []action) {
	r.total = len(actions)
	for _, a := range actions {
		r.totalB += a.src.size
	}
	work := make(chan action)
	var wg sync.WaitGroup
	for range min(r.o.Workers, max(len(actions), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				r.do(ctx, a)
			}
		}()
	}
	for _, a := range actions {
		if ctx.Err() != nil {
			break
		}
		work <- a
	}
	close(work)
	wg.Wait()
}

func (r *runner) do(ctx context.Context, a action) {
	srcName, dstName := r.names(a)
	line := a.kind + ": " + srcName + " to " + dstName
	if a.kind == "delete" {
		line = "delete: " + dstName
	}
	var err error
	if !r.o.DryRun {
		switch a.kind {
		case "upload":
			err = r.upload(ctx, a)
		case "download":
			err = r.download(ctx, a)
		case "delete":
			err = r.delete(ctx, a)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.sum.Failed++
		fmt.Fprintf(r.o.Errors, "%s failed: %s %v\n", a.kind, strings.TrimPrefix(line, a.kind+": "), err)
		return
	}
	if r.o.DryRun {
		line = "(dryrun) " + line
	}
	fmt.Fprintln(r.o.Out, line)
	switch a.kind {
	case "upload":
		r.sum.Uploaded++
	case "download":
		r.sum.Downloaded++
	case "delete":
		r.sum.Deleted++
	}
	if a.kind != "delete" && !r.o.DryRun {
		r.sum.Bytes += a.src.size
	}
	n := r.done.Add(1)
	b := r.doneB.Add(a.src.size)
	if r.o.Progress != nil {
		r.o.Progress(Progress{Files: int(n), TotalFiles: r.total, Bytes: b, TotalBytes: r.totalB})
	}
}

// names are the two sides as aws cli prints them: objects as s3:// URLs,
// local files relative to the working folder.
func (r *runner) names(a action) (string, string) {
	name := func(l Location, f file, rel string) string {
		if l.IsS3() {
			return "s3://" + l.Bucket + "/" + dirPrefix(l.Key) + rel
		}
		return relativePath(filepath.Join(l.Path, filepath.FromSlash(rel)))
	}
	rel := relOf(a)
	return name(r.src, a.src, rel), name(r.dst, a.dst, rel)
}

// relativePath is aws cli's relative_path: the folder relative to the
// working folder, joined with the name ("./a.txt", "sub/b.txt").
func relativePath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return abs
	}
	dir, base := filepath.Split(abs)
	rel, err := filepath.Rel(wd, filepath.Clean(dir))
	if err != nil {
		return abs
	}
	return rel + string(filepath.Separator) + base
}

func (r *runner) upload(ctx context.Context, a action) error {
	f, err := os.Open(a.src.abs)
	if err != nil {
		return err
	}
	defer f.Close()
	w := &s3client.ObjectWriter{Client: r.cl, Bucket: r.dst.Bucket, Key: dirPrefix(r.dst.Key) + a.src.rel,
		PartSize: r.o.PartSize, ContentType: mime.TypeByExtension(path.Ext(a.src.rel))}
	return UploadFile(ctx, w, f)
}

// UploadFile streams a file through w and stores it.
func UploadFile(ctx context.Context, w *s3client.ObjectWriter, f io.Reader) error {
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if werr := w.Write(ctx, buf[:n]); werr != nil {
				w.Abort(context.WithoutCancel(ctx))
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			w.Abort(context.WithoutCancel(ctx))
			return err
		}
	}
	if err := w.Close(ctx); err != nil {
		w.Abort(context.WithoutCancel(ctx))
		return err
	}
	return nil
}

func (r *runner) download(ctx context.Context, a action) error {
	target := filepath.Join(r.dst.Path, filepath.FromSlash(a.src.rel))
	return DownloadFile(ctx, r.cl, r.src.Bucket, a.src.key, target)
}

// DownloadFile stores an object at target through a temporary file beside
// it, and gives it the object's time, as aws cli does.
func DownloadFile(ctx context.Context, cl *s3client.Client, bucket, key, target string) error {
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return cl.Explain(err, bucket)
	}
	defer out.Body.Close()
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".creek-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, out.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), target)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	mod := aws.ToTime(out.LastModified)
	return os.Chtimes(target, mod, mod)
}

func (r *runner) delete(ctx context.Context, a action) error {
	if r.dst.IsS3() {
		_, err := r.cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.dst.Bucket), Key: aws.String(a.dst.key)})
		return r.cl.Explain(err, r.dst.Bucket)
	}
	return os.Remove(a.dst.abs)
}
