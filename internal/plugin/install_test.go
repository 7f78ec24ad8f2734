package plugin_test

// Tests of how the plugin is installed and used from outside: the krew
// manifest and archives (hack/krew.sh, checked with krew's own validation),
// the kubectl_complete-offering helper, and the Backstage export.

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/offering-operator/offering-operator/api/v1alpha1"
	"github.com/offering-operator/offering-operator/internal/plugin"
)

const repoRoot = "../.."

// krewPlugin is the part of a krew manifest the test reads.
type krewPlugin struct {
	Spec struct {
		Version   string `json:"version"`
		Platforms []struct {
			URI    string `json:"uri"`
			Sha256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

// TestKrewManifestAndCompletionHelper builds the release archive for this
// platform with hack/krew.sh, validates the manifest with krew's validation,
// checks the archive against it, and runs what the archive holds as a user
// would: the plugin's version and, through kubectl_complete-offering, its
// shell completion against the test API server.
func TestKrewManifestAndCompletionHelper(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	newRequest(t, f, "rack-a", resourceSpec("rack-space"), v1alpha1.ConsumptionRequestStatus{})
	out := t.TempDir()
	const version = "v0.0.0-krew-test"
	root, err := filepath.Abs(repoRoot)
	must(t, err)
	runIn(t, root, filepath.Join(root, "hack/krew.sh"), version, out, runtime.GOOS+"/"+runtime.GOARCH)

	manifest := filepath.Join(out, "offering.yaml")
	// krew's validation (sigs.k8s.io/krew/internal/index/validation, through
	// its validate-krew-manifest command pinned in hack/tools/krew): -skip-install
	// because installing would download the release from GitHub.
	runIn(t, filepath.Join(root, "hack/tools/krew"), "go", "run", "sigs.k8s.io/krew/cmd/validate-krew-manifest", "-manifest", manifest, "-skip-install")

	raw, err := os.ReadFile(manifest)
	must(t, err)
	var p krewPlugin
	must(t, yaml.Unmarshal(raw, &p))
	if p.Spec.Version != version || len(p.Spec.Platforms) != 1 {
		t.Fatalf("manifest: %+v", p.Spec)
	}
	pl := p.Spec.Platforms[0]
	archive := filepath.Join(out, filepath.Base(pl.URI))
	if !strings.HasSuffix(pl.URI, "/releases/download/"+version+"/"+filepath.Base(archive)) {
		t.Errorf("uri %s does not point at the release", pl.URI)
	}
	data, err := os.ReadFile(archive)
	must(t, err)
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != pl.Sha256 {
		t.Fatalf("the archive's sha256 is not the manifest's")
	}
	bin := t.TempDir()
	extract(t, archive, bin)
	for _, f := range append([]string{pl.Bin}, func() []string {
		var s []string
		for _, f := range pl.Files {
			s = append(s, f.From)
		}
		return s
	}()...) {
		if _, err := os.Stat(filepath.Join(bin, f)); err != nil {
			t.Errorf("the archive lacks %s named by the manifest: %v", f, err)
		}
	}

	got := runIn(t, bin, filepath.Join(bin, pl.Bin), "version", "--client")
	contains(t, "version --client", got, "Client Version:", version)

	// kubectl runs kubectl_complete-offering from the PATH with the words after `kubectl offering`.
	cmd := exec.Command(filepath.Join(bin, "kubectl_complete-offering"), "--kubeconfig", kubeconfig, "approve", "-n", f.ns, "")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl_complete-offering: %v\n%s%s", err, b, stderr.String())
	}
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 2 || lines[0] != "rack-a" || lines[1] != ":4" {
		t.Errorf("kubectl_complete-offering completed:\n%s", b)
	}
}

func runIn(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}

func extract(t *testing.T, archive, dir string) {
	t.Helper()
	fh, err := os.Open(archive)
	must(t, err)
	defer func() { _ = fh.Close() }()
	gz, err := gzip.NewReader(fh)
	must(t, err)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		must(t, err)
		if h.Typeflag != tar.TypeReg {
			continue
		}
		dst := filepath.Join(dir, filepath.Clean(h.Name))
		w, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode))
		must(t, err)
		_, err = io.Copy(w, tr) //nolint:gosec // a test archive built by hack/krew.sh
		must(t, err)
		must(t, w.Close())
	}
}

func TestCatalogBackstage(t *testing.T) {
	integration(t)
	f := newFixture(t, v1alpha1.ApprovalAutomatic)
	ctx := testContext(t)

	r := kubectlOffering(t, "catalog", "-o", "backstage", f.offering)
	expectCode(t, r, plugin.ExitOK)
	docs := yamlDocuments(t, r.stdout)
	byKind := map[string][]map[string]any{}
	for _, d := range docs {
		byKind[d["kind"].(string)] = append(byKind[d["kind"].(string)], d)
	}
	if len(byKind["Component"]) != 1 || len(byKind["Resource"]) != 6 || len(byKind["Template"]) != 1 || len(docs) != 8 {
		t.Fatalf("want a Component, 6 Resources and a Template, got:\n%s", r.stdout)
	}
	comp := byKind["Component"][0]
	if name := field(comp, "metadata", "name"); name != f.offering {
		t.Errorf("component name %v", name)
	}
	if owner := field(comp, "spec", "owner"); owner != "group:default/acme-colocation" {
		t.Errorf("component owner %v", owner)
	}
	if sel := field(comp, "metadata", "annotations", "backstage.io/kubernetes-label-selector"); sel != v1alpha1.LabelOffering+"="+f.offering {
		t.Errorf("label selector %v", sel)
	}
	for _, res := range byKind["Resource"] {
		if deps := field(res, "spec", "dependencyOf").([]any); len(deps) != 1 || deps[0] != "component:default/"+f.offering {
			t.Errorf("resource %v depends on %v", field(res, "metadata", "name"), deps)
		}
	}
	var resources []string
	for _, res := range byKind["Resource"] {
		resources = append(resources, fmt.Sprint(field(res, "metadata", "name"), " ", field(res, "spec", "type"), " ", field(res, "metadata", "title")))
	}
	// An item's kind is part of its entity's name: backup is both a resource and an action.
	if got, want := strings.Join(resources, "\n"), strings.Join([]string{
		f.offering + "-resource-rack-space offering-resource rack-space (resource)",
		f.offering + "-resource-dedicated-server offering-resource dedicated-server (resource)",
		f.offering + "-resource-backup offering-resource backup (resource)",
		f.offering + "-goods-ha-device offering-goods ha-device (goods)",
		f.offering + "-action-installation offering-action installation (action)",
		f.offering + "-action-backup offering-action backup (action)",
	}, "\n"); got != want {
		t.Errorf("resources:\n%s\nwant:\n%s", got, want)
	}

	// The Template offers the offering's items per kind and fetches the
	// skeleton of the chosen kind; each skeleton, filled in as Backstage
	// would, is a ConsumptionRequest the API server takes.
	tmpl := byKind["Template"][0]
	if field(tmpl, "apiVersion") != "scaffolder.backstage.io/v1beta3" || field(tmpl, "metadata", "name") != "request-"+f.offering {
		t.Errorf("template: %v", tmpl["metadata"])
	}
	params, _ := field(tmpl, "spec", "parameters").([]any)
	if len(params) != 2 {
		t.Fatalf("template parameters: %v", params)
	}
	oneOf, _ := field(params[0].(map[string]any), "dependencies", "kind", "oneOf").([]any)
	var offered []string
	for _, o := range oneOf {
		props := o.(map[string]any)["properties"].(map[string]any)
		offered = append(offered, fmt.Sprint(field(props, "kind", "enum"), field(props, "item", "enum"), props["quantity"] != nil))
	}
	if got := strings.Join(offered, " "); got != "[resource] [rack-space dedicated-server backup] false [goods] [ha-device] true [action] [installation backup] false" {
		t.Errorf("the template offers %s", got)
	}
	steps, _ := field(tmpl, "spec", "steps").([]any)
	if len(steps) != 2 {
		t.Fatalf("template steps: %v", steps)
	}
	fetch, publish := steps[0].(map[string]any), steps[1].(map[string]any)
	if fetch["action"] != "fetch:template" || field(fetch, "input", "url") != plugin.DefaultSkeletonURL+"/${{ parameters.kind }}" ||
		publish["action"] != "publish:github:pull-request" {
		t.Errorf("template steps: %v", steps)
	}
	values := map[string]string{"namespace": f.ns, "agreement": f.agreement, "quantity": "2"}
	for kind, item := range map[string]string{"resource": "rack-space", "goods": "ha-device", "action": "backup"} {
		values["name"], values["item"] = "from-backstage-"+kind, item
		skel, err := os.ReadFile(filepath.Join(repoRoot, "config/backstage/skeleton", kind, "${{ values.name }}.yaml"))
		must(t, err)
		text := string(skel)
		for k, v := range values {
			text = strings.ReplaceAll(text, "${{ values."+k+" }}", v)
		}
		var cr v1alpha1.ConsumptionRequest
		must(t, yaml.UnmarshalStrict([]byte(text), &cr))
		must(t, k8sClient.Create(ctx, &cr))
		if k, it := requestItem(&cr); k != kind || it != item {
			t.Errorf("skeleton %s made a request for %s %s", kind, k, it)
		}
	}
	var l v1alpha1.ConsumptionRequestList
	must(t, k8sClient.List(ctx, &l, client.InNamespace(f.ns)))
	if len(l.Items) != 3 {
		t.Errorf("want the three requests from the skeletons, got %d", len(l.Items))
	}

	r = kubectlOffering(t, "catalog", "-o", "backstage", "no-such-offering")
	expectCode(t, r, plugin.ExitError)
	contains(t, "stderr", r.stderr, "no ServiceOfferings found named no-such-offering")
}

// field walks nested maps.
func field(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

// requestItem is the kind (as the skeleton directories name it) and item of a request.
func requestItem(cr *v1alpha1.ConsumptionRequest) (string, string) {
	switch {
	case cr.Spec.Resource != nil:
		return "resource", string(cr.Spec.Resource.Name)
	case cr.Spec.Goods != nil:
		return "goods", string(cr.Spec.Goods.Name)
	case cr.Spec.Action != nil:
		return "action", string(cr.Spec.Action.Name)
	}
	return "", ""
}
