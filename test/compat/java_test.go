package compat

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

// Apache Kafka's Java client, kafka-clients 4.x (the jars scripts/kafka.sh
// fetched for the referee) and 2.8.2 (the last 2.x, fetched by
// scripts/test-deps.sh): java/Compat.java runs the scenarios.
func TestJava4(t *testing.T) {
	out, err := exec.Command("../../scripts/kafka.sh", "libs").Output()
	if err != nil {
		t.Skipf("Kafka's 4.x jars are not here (make test-deps fetches them): %v", err)
	}
	runJava(t, "java-4.x", string(out[:len(out)-1]), "compat-java-4")
}

func TestJava2(t *testing.T) {
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("no cache folder: %v", err)
	}
	libs := filepath.Join(cache, "creek", "kafka-clients-2.8.2")
	if _, err := os.Stat(filepath.Join(libs, ".complete")); err != nil {
		t.Skipf("kafka-clients 2.8.2 is not in %s (make test-deps fetches it from Maven Central)", libs)
	}
	runJava(t, "java-2.x", libs, "compat-java-2")
}

func runJava(t *testing.T, client, libs, topic string) {
	if _, err := exec.LookPath("javac"); err != nil {
		t.Skip("no javac (a JDK 17 or later) here")
	}
	classes, err := compileCompat(libs)
	if err != nil {
		t.Fatal(err)
	}
	runScript(t, client, "java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"-cp", classes+string(os.PathListSeparator)+filepath.Join(libs, "*"), "Compat", brokerAddr, topic)
}

// compileCompat compiles java/Compat.java against the jars in libs, once:
// the classes are cached under a name made of the source and the jars.
func compileCompat(libs string) (string, error) {
	src, err := os.ReadFile("java/Compat.java")
	if err != nil {
		return "", err
	}
	jars, _ := filepath.Glob(filepath.Join(libs, "*.jar"))
	sort.Strings(jars)
	h := sha256.New()
	h.Write(src)
	for _, j := range jars {
		h.Write([]byte(filepath.Base(j) + "\n"))
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "creek", "compat-java", hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, "Compat.class")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if out, err := exec.Command("javac", "-d", tmp, "-cp", filepath.Join(libs, "*"), "java/Compat.java").CombinedOutput(); err != nil {
		return "", fmt.Errorf("javac java/Compat.java: %v\n%s", err, out)
	}
	os.RemoveAll(dir)
	return dir, os.Rename(tmp, dir)
}
