package compat

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runScript runs a client written in another language. The script prints
// one line per scenario: "RESULT <scenario> <pass|fail|n/a> <detail>".
func runScript(t *testing.T, client string, name string, args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	reported := map[string][2]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) >= 3 && f[0] == "RESULT" {
			detail := ""
			if len(f) == 4 {
				detail = f[3]
			}
			reported[f[1]] = [2]string{f[2], detail}
		}
	}
	fns := map[string]scenarioFunc{}
	for _, s := range scenarios {
		fns[s] = func(t *testing.T) error {
			r, ok := reported[s]
			switch {
			case !ok:
				tail := stderr.String()
				if len(tail) > 2000 {
					tail = tail[len(tail)-2000:]
				}
				return fmt.Errorf("%s did not report this scenario (exit: %v)\n%s", client, err, tail)
			case r[0] == "pass" && r[1] != "":
				return passedWith(r[1])
			case r[0] == "pass":
				return nil
			case r[0] == "n/a":
				return notApplicable(r[1])
			}
			return fmt.Errorf("%s", r[1])
		}
	}
	runScenarios(t, client, fns)
}

// lookPython returns Debian's python3, where python3-kafka and
// python3-confluent-kafka import (not a pyenv python3 on PATH).
func lookPython(t *testing.T, module string) string {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import "+module).Run(); err != nil {
		t.Skipf("%s cannot import %s (make test installs it): %v", py, module, err)
	}
	return py
}

// lookVenvPython returns the python3 of creek's venv (made by
// scripts/test-deps.sh), where PyPI's newer clients import.
func lookVenvPython(t *testing.T, module string) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("no cache folder for creek's venv: %v", err)
	}
	py := filepath.Join(cache, "creek", "venv", "bin", "python3")
	if err := exec.Command(py, "-c", "import "+module).Run(); err != nil {
		t.Skipf("%s cannot import %s (make test installs it from PyPI): %v", py, module, err)
	}
	return py
}

func TestKafkaPython(t *testing.T) {
	py := lookPython(t, "kafka")
	runScript(t, "kafka-python", py, "python/kafka_python_compat.py", brokerAddr, "compat-kafka-python")
}

func TestConfluentKafka(t *testing.T) {
	py := lookPython(t, "confluent_kafka")
	runScript(t, "confluent-kafka", py, "python/confluent_kafka_compat.py", brokerAddr, "compat-confluent-kafka")
}

func TestKafkaPython2(t *testing.T) {
	py := lookVenvPython(t, "kafka")
	runScript(t, "kafka-python-2", py, "python/kafka_python_compat.py", brokerAddr, "compat-kafka-python-2")
}

func TestConfluentKafka2(t *testing.T) {
	py := lookVenvPython(t, "confluent_kafka")
	runScript(t, "confluent-kafka-2", py, "python/confluent_kafka_compat.py", brokerAddr, "compat-confluent-kafka-2")
}

func TestAIOKafka(t *testing.T) {
	py := lookVenvPython(t, "aiokafka")
	runScript(t, "aiokafka", py, "python/aiokafka_compat.py", brokerAddr, "compat-aiokafka")
}

func TestKafkaJS(t *testing.T) {
	if err := exec.Command("node", "-e", "require('./node/node_modules/kafkajs')").Run(); err != nil {
		t.Skip("kafkajs is not installed in test/compat/node (make test runs npm ci there)")
	}
	runScript(t, "kafkajs", "node", "node/kafkajs_compat.js", brokerAddr, "compat-kafkajs")
}
