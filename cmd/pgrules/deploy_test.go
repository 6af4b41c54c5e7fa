package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const deployDir = "../../deploy/kubernetes"

// decodeStrict decodes a manifest into its Kubernetes API type, failing on
// any field the type does not have: a typo is a test failure, not a field
// the API server would drop.
func decodeStrict(t *testing.T, file string, into any) {
	t.Helper()
	b := must(os.ReadFile(filepath.Join(deployDir, file)))
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// The manifests decode strictly, agree with each other (names, the N of the
// Indexed Job and of --shard, the shard dirs the merge gathers), and their
// args are pgrules command lines that parse, with a config that loads.
func TestKubernetesManifests(t *testing.T) {
	var pvc corev1.PersistentVolumeClaim
	var cm corev1.ConfigMap
	var secret corev1.Secret
	var shards, merge batchv1.Job
	decodeStrict(t, "pvc.yaml", &pvc)
	decodeStrict(t, "configmap.yaml", &cm)
	decodeStrict(t, "secret.example.yaml", &secret)
	decodeStrict(t, "job-shards.yaml", &shards)
	decodeStrict(t, "job-merge.yaml", &merge)
	for f, kind := range map[string]string{"pvc.yaml": pvc.Kind, "configmap.yaml": cm.Kind, "secret.example.yaml": secret.Kind, "job-shards.yaml": shards.Kind, "job-merge.yaml": merge.Kind} {
		if kind == "" {
			t.Errorf("%s has no kind", f)
		}
	}

	// The Indexed Job: N pods, each --shard auto/N.
	spec := shards.Spec
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion || spec.Completions == nil {
		t.Fatalf("job-shards.yaml: completionMode must be Indexed with completions set")
	}
	n := int(*spec.Completions)
	if p := spec.Parallelism; p == nil || *p < 1 || *p > *spec.Completions {
		t.Errorf("job-shards.yaml: parallelism must be 1..completions (%d)", n)
	}
	pod := spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("shard pods: restartPolicy %q, want Never (backoffLimitPerIndex retries an index)", pod.RestartPolicy)
	}
	c := pod.Containers[0]
	if got := argValue(c.Args, "--shard"); got != fmt.Sprintf("auto/%d", n) {
		t.Errorf("job-shards.yaml: --shard %q but completions is %d: want auto/%d", got, n, n)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e, ok := env["JOB_COMPLETION_INDEX"]; !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil ||
		e.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("JOB_COMPLETION_INDEX must come from the completion-index annotation (the args use $(JOB_COMPLETION_INDEX)): %+v", e)
	}
	key, ok := env["OPENROUTER_API_KEY"]
	if !ok || key.ValueFrom == nil || key.ValueFrom.SecretKeyRef == nil || key.ValueFrom.SecretKeyRef.Name != secret.Name {
		t.Fatalf("the API key must come from the Secret %s", secret.Name)
	}
	if _, ok := secret.StringData[key.ValueFrom.SecretKeyRef.Key]; !ok {
		t.Errorf("the Job reads key %q of Secret %s, which has %v", key.ValueFrom.SecretKeyRef.Key, secret.Name, secret.StringData)
	}
	checkVolumes(t, "job-shards.yaml", pod, pvc.Name, cm.Name)

	// Each pod's args, with its index, are a pgrules run that parses and
	// whose config loads (strictly: unknown keys fail) and names the key's
	// variable.
	cfgPath := filepath.Join(t.TempDir(), "pgrules.yaml")
	if err := os.WriteFile(cfgPath, []byte(cm.Data["pgrules.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	var outDirs, caches []string
	for k := range n {
		args := expand(c.Args, map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(k)})
		l := parseArgs(t, "job-shards.yaml", args, cfgPath)
		outDirs = append(outDirs, l.cfg.OutDir)
		caches = append(caches, l.cfg.Cache.Path)
		if l.cfg.Shard != fmt.Sprintf("auto/%d", n) || l.cfg.Providers["openrouter"]["api_key_env"] != "OPENROUTER_API_KEY" {
			t.Errorf("pod %d: shard %q, api_key_env %v", k, l.cfg.Shard, l.cfg.Providers["openrouter"]["api_key_env"])
		}
	}
	if outDirs[0] == outDirs[n-1] || caches[0] == caches[n-1] {
		t.Errorf("the shards share an out dir or a cache file: %v %v", outDirs, caches)
	}

	// The merge gathers exactly those N out dirs and caches.
	mp := merge.Spec.Template.Spec
	checkVolumes(t, "job-merge.yaml", mp, pvc.Name, cm.Name)
	if len(mp.InitContainers) != 1 || len(mp.Containers) != 1 {
		t.Fatalf("job-merge.yaml: want one init container (cache merge) and one container (merge)")
	}
	cacheArgs := mp.InitContainers[0].Args
	if strings.Join(cacheArgs[:2], " ") != "cache merge" || strings.Join(cacheArgs[2:len(cacheArgs)-1], " ") != strings.Join(caches, " ") {
		t.Errorf("cache merge %v: want the shards' caches %v then the destination", cacheArgs, caches)
	}
	parseArgs(t, "job-merge.yaml (init)", cacheArgs, "")
	margs := mp.Containers[0].Args
	l := parseArgs(t, "job-merge.yaml", margs, cfgPath)
	if !l.cfg.Report {
		t.Error("the merge should write report.html (--report)")
	}
	var dirs []string
	for _, a := range margs[1:] {
		if strings.HasPrefix(a, "/data/shards/") {
			dirs = append(dirs, a)
		}
	}
	if strings.Join(dirs, " ") != strings.Join(outDirs, " ") {
		t.Errorf("the merge gathers %v, the shards write %v", dirs, outDirs)
	}
	if shards.Spec.Template.Spec.Containers[0].Image != mp.Containers[0].Image {
		t.Error("the shard and merge pods run different images")
	}
}

// A typo in a field name fails strict decoding.
func TestKubernetesManifestTypoIsCaught(t *testing.T) {
	b := must(os.ReadFile(filepath.Join(deployDir, "job-shards.yaml")))
	typo := strings.Replace(string(b), "completionMode:", "completionMod:", 1)
	var job batchv1.Job
	if err := yaml.UnmarshalStrict([]byte(typo), &job); err == nil || !strings.Contains(err.Error(), "completionMod") {
		t.Errorf("a misspelt field decoded: %v", err)
	}
}

// The image: pgrules and its plugins from `make build`, static, non-root,
// pgrules as the entry point the Jobs' args follow.
func TestDockerfile(t *testing.T) {
	d := string(must(os.ReadFile("../../Dockerfile")))
	for _, want := range []string{"AS build", "CGO_ENABLED=0", "RUN make build", "COPY --from=build /out/ /usr/local/bin/", "USER nonroot", `ENTRYPOINT ["/usr/local/bin/pgrules"]`} {
		if !strings.Contains(d, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	var from []string
	for _, l := range strings.Split(d, "\n") {
		if strings.HasPrefix(l, "FROM ") {
			from = append(from, l)
		}
	}
	if len(from) != 2 || !strings.HasPrefix(from[0], "FROM golang:") || !strings.Contains(from[1], "distroless/static") {
		t.Errorf("Dockerfile: want a golang build stage and a distroless static runtime, got %q", from)
	}
}

func checkVolumes(t *testing.T, file string, pod corev1.PodSpec, claim, configMap string) {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		for _, m := range c.VolumeMounts {
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("%s: container %s mounts volume %q, which is not declared", file, c.Name, m.Name)
			}
		}
	}
	if v := vols["data"]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != claim {
		t.Errorf("%s: volume data must be the claim %s", file, claim)
	}
	if v, ok := vols["config"]; ok && (v.ConfigMap == nil || v.ConfigMap.Name != configMap) {
		t.Errorf("%s: volume config must be the ConfigMap %s", file, configMap)
	}
}

var k8sVar = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand does what the kubelet does to args: $(VAR) from the container's
// environment.
func expand(args []string, vars map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = k8sVar.ReplaceAllStringFunc(a, func(m string) string {
			if v, ok := vars[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		})
	}
	return out
}

// parseArgs finds the subcommand of args and parses its flags as pgrules
// would, with --config pointing at a copy of the ConfigMap's file.
func parseArgs(t *testing.T, file string, args []string, cfgPath string) *loaded {
	t.Helper()
	root := newRootCmd(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Fatalf("%s: %v is not a pgrules command: %v", file, args, err)
	}
	for i, a := range rest {
		if a == "--config" && cfgPath != "" && i+1 < len(rest) {
			rest[i+1] = cfgPath
		}
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%s: %v: %v", file, args, err)
	}
	if cmd.Flags().Lookup("config") == nil {
		return nil
	}
	l, err := loadFor(cmd)
	if err != nil {
		t.Fatalf("%s: %v: config: %v", file, args, err)
	}
	return l
}

func argValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
