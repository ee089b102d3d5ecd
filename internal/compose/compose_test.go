package compose

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cartflow/cartflow/internal/config"
)

// root is the repository, seen from this package's directory, where go test runs.
const root = "../.."

// Ports that images listen on by themselves; nothing in this repository sets them.
const (
	postgresImagePort   = 5432  // the postgres image
	stripeMockImagePort = 12111 // stripe/stripe-mock's ENTRYPOINT passes -http-port 12111
	jaegerOTLPHTTPPort  = 4318  // jaegertracing/all-in-one's OTLP/HTTP receiver
)

// apps are the compose services that run a binary configured by envconfig: the Dockerfile target
// that builds each, and the settings struct it loads (as config.Load takes it).
var apps = []struct {
	service, target string
	spec            any
}{
	{"worker", "worker", &config.Worker{}},
	{"api", "api", &config.API{}},
}

// binaries are the Dockerfile targets and the main package each one's ENTRYPOINT runs.
var binaries = []struct{ target, pkg string }{
	{"worker", "./worker"},
	{"api", "./api"},
	{"stripefake", "./internal/dev/cmd/stripefake"},
}

// TestBuildTargetsExist: `docker compose build` fails late and far from the cause when a
// service names a context, Dockerfile or target that is not there.
func TestBuildTargetsExist(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	for _, name := range slices.Sorted(maps.Keys(s.compose.Services)) {
		b := s.compose.Services[name].Build
		if b == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			context := filepath.Join(root, b.Context)
			if fi, err := os.Stat(context); err != nil || !fi.IsDir() {
				t.Fatalf("build context %q is not a directory (%v)", b.Context, err)
			}
			dockerfile := cmp.Or(b.Dockerfile, "Dockerfile")
			if _, err := os.Stat(filepath.Join(context, dockerfile)); err != nil {
				t.Fatalf("no %s in build context %q: %v", dockerfile, b.Context, err)
			}
			// Without a target the Dockerfile's last stage is built: one binary for every service.
			if b.Target == "" {
				t.Fatal("build has no target")
			}
			if _, ok := s.stages[b.Target]; !ok {
				t.Errorf("build target %q: the Dockerfile has no `FROM … AS %s` (it has %v)",
					b.Target, b.Target, slices.Sorted(maps.Keys(s.stages)))
			}
		})
	}
	for _, app := range apps {
		if got := s.service(t, app.service).Build; got == nil || got.Target != app.target {
			t.Errorf("service %s: want build target %q, got %+v", app.service, app.target, got)
		}
	}
}

// TestDockerfileBuildsTheBinaries: each target must run the binary of the package it is named
// for, and that package must still exist where the build looks for it.
func TestDockerfileBuildsTheBinaries(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	built := s.goBuildPackages()
	for _, bin := range binaries {
		t.Run(bin.target, func(t *testing.T) {
			t.Parallel()
			if !slices.Contains(built, bin.pkg) {
				t.Errorf("the Dockerfile's go build does not build %s (it builds %v)", bin.pkg, built)
			}
			mainGo, err := os.ReadFile(filepath.Join(root, bin.pkg, "main.go"))
			if err != nil || !regexp.MustCompile(`(?m)^package main$`).Match(mainGo) {
				t.Errorf("%s is not a main package (%v)", bin.pkg, err)
			}
			st, ok := s.stages[bin.target]
			if !ok {
				t.Fatalf("the Dockerfile has no stage %q", bin.target)
			}
			entrypoint, err := st.entrypoint()
			if err != nil {
				t.Fatal(err)
			}
			if want := "/" + path.Base(bin.pkg); len(entrypoint) == 0 || entrypoint[0] != want {
				t.Errorf("stage %s: ENTRYPOINT %q, want it to run %s", bin.target, entrypoint, want)
			}
			if user := st.last("USER"); user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
				t.Errorf("stage %s: USER %q, want a non-root user", bin.target, user)
			}
		})
	}
}

// TestRequiredSettingsAreSet: a `required:"true"` variable that the stack does not set makes the
// container exit at start with nothing but a log line to say why.
func TestRequiredSettingsAreSet(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	for _, app := range apps {
		env := s.envOf(t, app.service)
		for _, v := range settingsOf(t, app.spec) {
			if v.required && env[v.name] == "" {
				t.Errorf("service %s: %s is required by the code but set neither in its environment nor in its env_file",
					app.service, v.name)
			}
		}
	}
}

// TestSettingNamesExist catches typos and settings the code no longer reads: envconfig ignores
// unknown variables, so they would silently do nothing.
func TestSettingNamesExist(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	all := map[string]bool{}
	for _, app := range apps {
		own := map[string]bool{}
		for _, v := range settingsOf(t, app.spec) {
			own[v.name], all[v.name] = true, true
		}
		for _, name := range slices.Sorted(maps.Keys(s.service(t, app.service).Environment)) {
			if !own[name] {
				t.Errorf("service %s: environment sets %s, which %T does not read", app.service, name, app.spec)
			}
		}
	}
	for _, l := range s.envExample {
		if !all[l.key] {
			t.Errorf(".env.example:%d: %s is not a setting of the worker or the BFF", l.line, l.key)
		}
	}
}

// TestEnvExampleListsEverySetting: .env.example is the one place that shows every setting.
func TestEnvExampleListsEverySetting(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	listed := map[string]int{}
	for _, l := range s.envExample {
		if first, dup := listed[l.key]; dup {
			t.Errorf(".env.example:%d: %s again (first on line %d)", l.line, l.key, first)
		}
		listed[l.key] = l.line
	}
	for _, app := range apps {
		for _, v := range settingsOf(t, app.spec) {
			if _, ok := listed[v.name]; !ok {
				t.Errorf(".env.example does not list %s (read by %s)", v.name, app.service)
			}
		}
		files := s.service(t, app.service).EnvFile
		if !slices.ContainsFunc(files, func(f envFile) bool { return path.Clean(f.Path) == ".env.example" && f.required() }) {
			t.Errorf("service %s does not read .env.example (env_file %+v)", app.service, files)
		}
	}
}

// TestEnvFileAgreesWithEnvironment: a value that the service's environment overrides must read
// the same in .env.example, or the example documents a stack that does not exist.
func TestEnvFileAgreesWithEnvironment(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	for _, app := range apps {
		for name, value := range s.service(t, app.service).Environment {
			for _, l := range s.envExample {
				if l.key == name && l.value != value {
					t.Errorf(".env.example:%d: %s=%s, but service %s runs with %s", l.line, name, l.value, app.service, value)
				}
			}
		}
	}
}

// TestSettingsLoad hands each app's environment, exactly as compose would build it, to the real
// config.Load: a malformed duration, number or flag fails here rather than at container start.
// It sets process variables, so it cannot run in parallel.
func TestSettingsLoad(t *testing.T) {
	s := theStack(t)
	for _, app := range apps {
		t.Run(app.service, func(t *testing.T) {
			env := s.envOf(t, app.service)
			// Start from nothing, so that the machine's own environment cannot fill a gap.
			for _, v := range settingsOf(t, app.spec) {
				t.Setenv(v.name, "")
				os.Unsetenv(v.name)
			}
			for name, value := range env {
				t.Setenv(name, value)
			}
			cfg := reflect.New(reflect.TypeOf(app.spec).Elem()).Interface()
			if err := config.Load(cfg); err != nil {
				t.Fatalf("config.Load with service %s's environment: %v", app.service, err)
			}
			// Docker sends SIGKILL stop_grace_period after SIGTERM; the BFF must have drained by then.
			if api, ok := cfg.(*config.API); ok {
				grace, err := time.ParseDuration(s.service(t, app.service).StopGracePeriod)
				if err != nil || grace <= api.ShutdownTimeout {
					t.Errorf("service %s: stop_grace_period %q must exceed SHUTDOWN_TIMEOUT %v (%v)",
						app.service, s.service(t, app.service).StopGracePeriod, api.ShutdownTimeout, err)
				}
			}
		})
	}
}

// TestServicesReachEachOther: every address a client is configured with must name a compose
// service, on the port that service listens on.
func TestServicesReachEachOther(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	worker, api := s.envOf(t, "worker"), s.envOf(t, "api")
	stripe, temporal := s.service(t, "stripe"), s.service(t, "temporal")
	_, stripePort, err := hostPort(flagValue(stripe.Command, "listen"))
	if err != nil {
		t.Fatalf("stripe: -listen: %v", err)
	}
	_, apiPort, err := hostPort(api["HTTP_ADDR"])
	if err != nil {
		t.Fatalf("api: HTTP_ADDR: %v", err)
	}
	temporalPort := defaultPort(t, &config.Worker{}, "TEMPORAL_ADDRESS")
	var temporalHealth []string
	if temporal.Healthcheck != nil {
		temporalHealth = temporal.Healthcheck.Test
	}

	type link struct {
		name string
		addr string // as the client is configured
		to   string // the service that must answer
		port int    // where that service listens
	}
	links := []link{
		{"worker DATABASE_URL", worker["DATABASE_URL"], "postgres", postgresImagePort},
		{"api DATABASE_URL", api["DATABASE_URL"], "postgres", postgresImagePort},
		{"worker TEMPORAL_ADDRESS", worker["TEMPORAL_ADDRESS"], "temporal", temporalPort},
		{"api TEMPORAL_ADDRESS", api["TEMPORAL_ADDRESS"], "temporal", temporalPort},
		{"temporal-ui TEMPORAL_ADDRESS", s.service(t, "temporal-ui").Environment["TEMPORAL_ADDRESS"], "temporal", temporalPort},
		{"temporal healthcheck --address", flagValue(temporalHealth, "address"), "temporal", temporalPort},
		{"worker STRIPE_API_URL", worker["STRIPE_API_URL"], "stripe", stripePort},
		{"stripe -upstream", flagValue(stripe.Command, "upstream"), "stripe-mock", stripeMockImagePort},
		{"worker OTEL_EXPORTER_OTLP_ENDPOINT", worker["OTEL_EXPORTER_OTLP_ENDPOINT"], "jaeger", jaegerOTLPHTTPPort},
		{"api OTEL_EXPORTER_OTLP_ENDPOINT", api["OTEL_EXPORTER_OTLP_ENDPOINT"], "jaeger", jaegerOTLPHTTPPort},
	}
	for _, server := range nginxUpstreamServers(s.nginx) {
		links = append(links, link{"gateway upstream " + server, server, "api", apiPort})
	}
	for _, l := range links {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			host, port, err := hostPort(l.addr)
			switch {
			case err != nil:
				t.Errorf("%q: %v", l.addr, err)
			case s.compose.Services[host] == nil:
				t.Errorf("%q: host %q is not a compose service", l.addr, host)
			case host != l.to || port != l.port:
				t.Errorf("%q: want %s:%d", l.addr, l.to, l.port)
			}
		})
	}
}

// TestPublishedPorts: the stack answers on the addresses the code and README default to, so
// tools and habits made for `make dev` work against it unchanged.
func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	_, stripePort, err := hostPort(flagValue(s.service(t, "stripe").Command, "listen"))
	if err != nil {
		t.Fatalf("stripe: -listen: %v", err)
	}
	temporalPort := defaultPort(t, &config.Worker{}, "TEMPORAL_ADDRESS")
	_, metricsPort, err := hostPort(s.envOf(t, "worker")["METRICS_ADDR"])
	if err != nil {
		t.Fatalf("worker: METRICS_ADDR: %v", err)
	}
	published := []struct {
		name, service   string
		host, container int
	}{
		{"the API on HTTP_ADDR's default port, through the gateway", "gateway",
			defaultPort(t, &config.API{}, "HTTP_ADDR"), nginxListenPort(t, s.nginx)},
		{"Temporal on TEMPORAL_ADDRESS's default port", "temporal", temporalPort, temporalPort},
		{"the Stripe layer on its -listen port", "stripe", stripePort, stripePort},
		{"the worker's metrics on METRICS_ADDR's default port", "worker",
			defaultPort(t, &config.Worker{}, "METRICS_ADDR"), metricsPort},
	}
	for _, p := range published {
		ports := s.service(t, p.service).Ports
		if !slices.Contains(ports, port{host: p.host, container: p.container}) {
			t.Errorf("%s: service %s publishes %+v, want host %d to container %d", p.name, p.service, ports, p.host, p.container)
		}
	}
	// Replicas cannot share a host port; compose would start one and fail the others.
	for name, svc := range s.compose.Services {
		if svc.Deploy.Replicas != nil && *svc.Deploy.Replicas > 1 {
			for _, p := range svc.Ports {
				if p.host != 0 {
					t.Errorf("service %s: %d replicas cannot all publish host port %d", name, *svc.Deploy.Replicas, p.host)
				}
			}
		}
	}
}

// TestGatewayMatchesTheBFF: the gateway must use the nginx.conf checked here, and its limits must
// not contradict the BFF's: a smaller body limit would reject requests the BFF accepts, and a
// shorter read timeout would cut off checkouts the BFF is still waiting on.
func TestGatewayMatchesTheBFF(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	api := s.envOf(t, "api")
	if !slices.Contains(s.service(t, "gateway").Volumes, mount{source: "./deploy/nginx.conf", target: "/etc/nginx/nginx.conf"}) {
		t.Errorf("gateway does not mount ./deploy/nginx.conf as /etc/nginx/nginx.conf")
	}
	maxBody, err := strconv.ParseInt(cmp.Or(api["MAX_BODY_BYTES"], defaultOf(t, &config.API{}, "MAX_BODY_BYTES")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := nginxSize(nginxDirective(s.nginx, "client_max_body_size")); err != nil || got != maxBody {
		t.Errorf("nginx client_max_body_size is %d bytes (%v), want MAX_BODY_BYTES = %d", got, err, maxBody)
	}
	wait, err := time.ParseDuration(cmp.Or(api["CHECKOUT_WAIT"], defaultOf(t, &config.API{}, "CHECKOUT_WAIT")))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := nginxDuration(nginxDirective(s.nginx, "proxy_read_timeout")); err != nil || got <= wait {
		t.Errorf("nginx proxy_read_timeout is %v (%v), want more than CHECKOUT_WAIT = %v", got, err, wait)
	}
	// The BFF serves /metrics on its internal listener only; the gateway answers 404 for it too.
	if !regexp.MustCompile(`location = /metrics \{[^}]*return 404`).MatchString(s.nginx) {
		t.Errorf("nginx passes /metrics through to the BFF; want location = /metrics answering 404")
	}
}

// TestBFFTrustsTheGatewayAlone: the BFF takes the client's address from X-Forwarded-For only
// from TRUSTED_PROXIES; that must be the gateway's and the storefront's fixed addresses, or every
// client looks like one of them (one rate-limit bucket for all), or anyone on the network could
// name their own address.
func TestBFFTrustsTheGatewayAndTheStorefrontAlone(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	gateway := s.service(t, "gateway").Networks["default"].IPv4Address
	if gateway == "" {
		t.Fatal("the gateway has no fixed ipv4_address on the default network")
	}
	web := s.service(t, "web").Networks["default"].IPv4Address
	if web == "" {
		t.Fatal("the storefront has no fixed ipv4_address on the default network")
	}
	if got, want := s.envOf(t, "api")["TRUSTED_PROXIES"], gateway+","+web; got != want {
		t.Errorf("api TRUSTED_PROXIES = %q, want the gateway's and the storefront's addresses %s and nothing else", got, want)
	}
}

// TestCredentialsAgree: the passwords and names that one service sets up and another logs in
// with are written in different places; a mismatch shows up only as a login failure at start.
func TestCredentialsAgree(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	pg, temporal := s.service(t, "postgres"), s.service(t, "temporal")
	var initSQL string
	for _, m := range pg.Volumes {
		if strings.HasPrefix(m.target, "/docker-entrypoint-initdb.d/") {
			b, err := os.ReadFile(filepath.Join(root, m.source))
			if err != nil {
				t.Fatal(err)
			}
			initSQL += string(b)
		}
	}
	role := regexp.MustCompile(`(?i)CREATE ROLE\s+(\w+)`).FindStringSubmatch(initSQL)
	db := regexp.MustCompile(`(?i)CREATE DATABASE\s+(\w+)\s+OWNER\s+(\w+)`).FindStringSubmatch(initSQL)
	if role == nil || db == nil {
		t.Fatalf("postgres: no init script creating the app's role and database (found %q)", initSQL)
	}
	pgUser := cmp.Or(pg.Environment["POSTGRES_USER"], "postgres") // the image's default superuser

	type pair struct{ name, got, want string }
	pairs := []pair{
		{"temporal POSTGRES_USER is the postgres superuser", temporal.Environment["POSTGRES_USER"], pgUser},
		{"temporal POSTGRES_PWD is the superuser's password", temporal.Environment["POSTGRES_PWD"], pg.Environment["POSTGRES_PASSWORD"]},
		{"temporal POSTGRES_SEEDS is the postgres service", temporal.Environment["POSTGRES_SEEDS"], "postgres"},
	}
	for _, app := range apps {
		env := s.envOf(t, app.service)
		u, err := url.Parse(env["DATABASE_URL"])
		if err != nil {
			t.Fatalf("%s DATABASE_URL: %v", app.service, err)
		}
		password, _ := u.User.Password()
		pairs = append(pairs,
			pair{app.service + " DATABASE_URL user is the init script's role", u.User.Username(), role[1]},
			pair{app.service + " DATABASE_URL password is postgres's CARTFLOW_DB_PASSWORD", password, pg.Environment["CARTFLOW_DB_PASSWORD"]},
			pair{app.service + " DATABASE_URL database is the init script's", strings.TrimPrefix(u.Path, "/"), db[1]},
			pair{app.service + " TEMPORAL_NAMESPACE is the one auto-setup creates",
				cmp.Or(env["TEMPORAL_NAMESPACE"], defaultOf(t, app.spec, "TEMPORAL_NAMESPACE")),
				cmp.Or(temporal.Environment["DEFAULT_NAMESPACE"], "default")},
		)
	}
	pairs = append(pairs, pair{"the init script's database belongs to its role", db[2], role[1]})
	for _, p := range pairs {
		if p.got != p.want || p.got == "" {
			t.Errorf("%s: got %q, want %q", p.name, p.got, p.want)
		}
	}
}

// TestDependsOn: compose rejects a dependency on a missing service, and waits forever (or fails)
// on service_healthy when the dependency has no healthcheck.
func TestDependsOn(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	conditions := []string{"service_started", "service_healthy", "service_completed_successfully"}
	for name, svc := range s.compose.Services {
		for dep, cond := range svc.DependsOn {
			target, ok := s.compose.Services[dep]
			switch {
			case !ok:
				t.Errorf("service %s depends on %s, which is not a service", name, dep)
			case !slices.Contains(conditions, cond):
				t.Errorf("service %s: depends_on %s has condition %q", name, dep, cond)
			case cond == "service_healthy" && !target.Healthcheck.enabled():
				t.Errorf("service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
	}
}

// TestImagesArePinned: an unpinned image changes under the stack without a commit.
func TestImagesArePinned(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	for name, svc := range s.compose.Services {
		switch {
		case svc.Image == "" && svc.Build == nil:
			t.Errorf("service %s has neither image nor build", name)
		case svc.Image != "":
			if err := pinned(svc.Image); err != nil {
				t.Errorf("service %s: image %q: %v", name, svc.Image, err)
			}
		}
	}
	for _, st := range s.dockerfile {
		if _, isStage := s.stages[st.image]; isStage || st.image == "scratch" {
			continue
		}
		if err := pinned(st.image); err != nil {
			t.Errorf("Dockerfile: FROM %s: %v", st.image, err)
		}
	}
}

// TestRestartPolicies: every service is long-running; after a crash or a Docker restart the stack
// should come back by itself, but `docker compose stop` must stay stopped.
func TestRestartPolicies(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	for name, svc := range s.compose.Services {
		if svc.Restart != "unless-stopped" {
			t.Errorf("service %s: restart %q, want unless-stopped", name, svc.Restart)
		}
	}
}

// TestVolumes: a named volume must be declared at the top level, and a bind-mounted file must
// exist, or Docker creates an empty directory in its place.
func TestVolumes(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	used := map[string]bool{}
	for name, svc := range s.compose.Services {
		for _, m := range svc.Volumes {
			switch {
			case m.source == "":
				// An anonymous volume.
			case strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/"):
				if _, err := os.Stat(filepath.Join(root, m.source)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, m.source, err)
				}
			default:
				used[m.source] = true
				if _, ok := s.compose.Volumes[m.source]; !ok {
					t.Errorf("service %s uses volume %s, which is not declared under volumes:", name, m.source)
				}
			}
		}
	}
	for name := range s.compose.Volumes {
		if !used[name] {
			t.Errorf("volume %s is declared but no service uses it", name)
		}
	}
}

// TestWorksWithoutDotEnv: `docker compose up` must work on a fresh clone, where no .env exists,
// so every variable the file interpolates needs a default.
func TestWorksWithoutDotEnv(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	for _, name := range s.bareVars {
		t.Errorf("docker-compose.yml uses ${%s} without a default (write ${%s:-value})", name, name)
	}
}

// TestNoLiveSecrets: these files are committed and baked into images; a live Stripe key in them
// would be a leaked key. The example key must also be one that stripe-mock accepts.
func TestNoLiveSecrets(t *testing.T) {
	t.Parallel()
	s := theStack(t)
	files := []string{"docker-compose.yml", ".env.example", "Dockerfile", ".dockerignore"}
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	live := regexp.MustCompile(`\b(sk|rk)_live_`)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if live.MatchString(line) {
				t.Errorf("%s:%d holds what looks like a live Stripe key", f, i+1)
			}
		}
	}
	// stripe-mock takes letters and digits after sk_test_, nothing else.
	testKey := regexp.MustCompile(`^sk_test_[A-Za-z0-9]+$`)
	for _, l := range s.envExample {
		if l.key == "STRIPE_SECRET_KEY" && !testKey.MatchString(l.value) {
			t.Errorf(".env.example:%d: STRIPE_SECRET_KEY %q is not a placeholder test key (sk_test_ then letters and digits)", l.line, l.value)
		}
	}
	if key := s.envOf(t, "worker")["STRIPE_SECRET_KEY"]; !testKey.MatchString(key) {
		t.Errorf("worker STRIPE_SECRET_KEY %q is not a placeholder test key", key)
	}
}

// --- What the tests read ---

// stack is every file under test, parsed once.
type stack struct {
	compose    composeFile
	bareVars   []string // variables interpolated without a default
	dockerfile []stage
	stages     map[string]stage // by name (FROM … AS name)
	envExample []envLine
	nginx      string // deploy/nginx.conf, comments removed
}

var loadStack = sync.OnceValues(func() (*stack, error) {
	var s stack
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("docker-compose.yml: %w", err)
	}
	interpolateNode(&doc, &s.bareVars)
	if err := doc.Decode(&s.compose); err != nil {
		return nil, fmt.Errorf("docker-compose.yml: %w", err)
	}

	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	if s.dockerfile, err = parseDockerfile(string(dockerfile)); err != nil {
		return nil, fmt.Errorf("Dockerfile: %w", err)
	}
	s.stages = map[string]stage{}
	for _, st := range s.dockerfile {
		if st.name != "" {
			s.stages[st.name] = st
		}
	}

	if s.envExample, err = readEnvFile(filepath.Join(root, ".env.example")); err != nil {
		return nil, err
	}

	nginx, err := os.ReadFile(filepath.Join(root, "deploy", "nginx.conf"))
	if err != nil {
		return nil, err
	}
	s.nginx = regexp.MustCompile(`(?m)#.*$`).ReplaceAllString(string(nginx), "")
	return &s, nil
})

func theStack(t *testing.T) *stack {
	t.Helper()
	s, err := loadStack()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stack) service(t *testing.T, name string) *service {
	t.Helper()
	svc, ok := s.compose.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return svc
}

// envOf is the environment compose gives the service's container: its required env_files in
// order, then its environment. Optional files (a developer's .env) are left out: the stack must
// work without them.
func (s *stack) envOf(t *testing.T, name string) map[string]string {
	t.Helper()
	svc := s.service(t, name)
	env := map[string]string{}
	for _, f := range svc.EnvFile {
		if !f.required() {
			continue
		}
		lines, err := readEnvFile(filepath.Join(root, f.Path))
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		for _, l := range lines {
			env[l.key] = l.value
		}
	}
	maps.Copy(env, svc.Environment)
	return env
}

// goBuildPackages lists the ./packages that the Dockerfile's `go build` compiles.
func (s *stack) goBuildPackages() []string {
	var pkgs []string
	for _, st := range s.dockerfile {
		for _, in := range st.instructions {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				for _, f := range strings.Fields(in.args) {
					if strings.HasPrefix(f, "./") {
						pkgs = append(pkgs, f)
					}
				}
			}
		}
	}
	return pkgs
}

// --- docker-compose.yml, as far as the tests need it ---

type composeFile struct {
	Services map[string]*service `yaml:"services"`
	Volumes  map[string]any      `yaml:"volumes"`
}

type service struct {
	Image           string       `yaml:"image"`
	Build           *build       `yaml:"build"`
	Command         stringList   `yaml:"command"`
	Environment     environment  `yaml:"environment"`
	EnvFile         envFiles     `yaml:"env_file"`
	DependsOn       dependsOn    `yaml:"depends_on"`
	Ports           []port       `yaml:"ports"`
	Volumes         []mount      `yaml:"volumes"`
	Healthcheck     *healthcheck `yaml:"healthcheck"`
	Restart         string       `yaml:"restart"`
	StopGracePeriod string       `yaml:"stop_grace_period"`
	Deploy          struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
	// Networks is the long form only, the one that can fix an address.
	Networks map[string]struct {
		IPv4Address string `yaml:"ipv4_address"`
	} `yaml:"networks"`
}

// build is `build: context` or `build: {context, dockerfile, target}`.
type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
	Target     string `yaml:"target"`
}

func (b *build) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain build // without this method, so Decode does not recurse
	return n.Decode((*plain)(b))
}

// stringList is a string or a list of strings (command, healthcheck test).
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	return n.Decode((*[]string)(l))
}

// environment is a map, or a list of NAME=value.
type environment map[string]string

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	*e = environment{}
	if n.Kind == yaml.SequenceNode {
		var items []string
		if err := n.Decode(&items); err != nil {
			return err
		}
		for _, item := range items {
			name, value, _ := strings.Cut(item, "=")
			(*e)[name] = value
		}
		return nil
	}
	return n.Decode((*map[string]string)(e))
}

// envFile is one env_file entry; a plain string is a required file.
type envFile struct {
	Path     string `yaml:"path"`
	Required *bool  `yaml:"required"`
}

func (f envFile) required() bool { return f.Required == nil || *f.Required }

type envFiles []envFile

func (fs *envFiles) UnmarshalYAML(n *yaml.Node) error {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	for _, item := range items {
		var f envFile
		if item.Kind == yaml.ScalarNode {
			f.Path = item.Value
		} else if err := item.Decode(&f); err != nil {
			return err
		}
		*fs = append(*fs, f)
	}
	return nil
}

// dependsOn maps each dependency to its condition; the list form means service_started.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			(*d)[name] = "service_started"
		}
		return nil
	}
	var long map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	for name, dep := range long {
		(*d)[name] = cmp.Or(dep.Condition, "service_started")
	}
	return nil
}

// port is one published port; host is 0 when Docker picks it.
type port struct{ host, container int }

func (p *port) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var long struct {
			Target    int    `yaml:"target"`
			Published string `yaml:"published"`
		}
		if err := n.Decode(&long); err != nil {
			return err
		}
		p.container = long.Target
		if long.Published != "" {
			h, err := strconv.Atoi(long.Published)
			if err != nil {
				return fmt.Errorf("port %+v: %w", long, err)
			}
			p.host = h
		}
		return nil
	}
	// [[ip:]host:]container[/protocol]
	spec, _, _ := strings.Cut(n.Value, "/")
	parts := strings.Split(spec, ":")
	c, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil {
		return fmt.Errorf("port %q: %w", n.Value, err)
	}
	p.container = c
	if len(parts) > 1 {
		if p.host, err = strconv.Atoi(parts[len(parts)-2]); err != nil {
			return fmt.Errorf("port %q: %w", n.Value, err)
		}
	}
	return nil
}

// mount is one volumes entry; source is empty for an anonymous volume.
type mount struct{ source, target string }

func (m *mount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var long struct{ Source, Target string }
		if err := n.Decode(&long); err != nil {
			return err
		}
		m.source, m.target = long.Source, long.Target
		return nil
	}
	parts := strings.Split(n.Value, ":")
	if len(parts) == 1 {
		m.target = parts[0]
		return nil
	}
	m.source, m.target = parts[0], parts[1]
	return nil
}

type healthcheck struct {
	Test    stringList `yaml:"test"`
	Disable bool       `yaml:"disable"`
}

func (h *healthcheck) enabled() bool {
	return h != nil && !h.Disable && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// interpolation matches compose's $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error},
// ${NAME:+alternative} and $NAME.
var interpolation = regexp.MustCompile(`\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))`)

// interpolateNode resolves every value in the document as compose would with neither a shell
// variable nor a .env set, and records the variables that have no default. Keys are left alone,
// as compose does, and aliases are resolved where their anchor is.
func interpolateNode(n *yaml.Node, bare *[]string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			interpolateNode(c, bare)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			interpolateNode(n.Content[i], bare)
		}
	case yaml.ScalarNode:
		n.Value = interpolation.ReplaceAllStringFunc(n.Value, func(m string) string {
			sm := interpolation.FindStringSubmatch(m)
			name, op, word := sm[1]+sm[4], sm[2], sm[3]
			switch op {
			case "":
				if m == "$$" {
					return "$"
				}
				*bare = append(*bare, name)
				return ""
			case ":-", "-":
				return word
			case ":+", "+":
				return ""
			default: // :? and ?: an error when unset, which it is here
				*bare = append(*bare, name)
				return ""
			}
		})
	}
}

// --- .env files ---

type envLine struct {
	key, value string
	line       int
}

// readEnvFile reads NAME=value lines, as compose's env_file does; # starts a comment line.
func readEnvFile(name string) ([]envLine, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var lines []envLine
	valid := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	for i, text := range strings.Split(string(b), "\n") {
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok || !valid.MatchString(key) {
			return nil, fmt.Errorf("%s:%d: want NAME=value, got %q", name, i+1, text)
		}
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		lines = append(lines, envLine{key: key, value: value, line: i + 1})
	}
	return lines, nil
}

// --- envconfig settings ---

// setting is one environment variable that envconfig reads.
type setting struct {
	name, def string
	required  bool
}

// settingsOf lists the variables config.Load reads into spec (a pointer to a struct). Like
// envconfig, it reads an embedded struct's fields without a prefix; like config.Load, it reads a
// settings group (a struct field tagged ignored:"true") without a prefix too.
func settingsOf(t *testing.T, spec any) []setting {
	t.Helper()
	var out []setting
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			switch {
			case f.Anonymous && f.Type.Kind() == reflect.Struct:
				walk(f.Type)
			case f.IsExported() && f.Type.Kind() == reflect.Struct && f.Tag.Get("ignored") == "true":
				walk(f.Type)
			case !f.IsExported() || f.Tag.Get("ignored") == "true":
			case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]():
				// envconfig would prefix the nested fields' names; teach this test how first.
				t.Fatalf("%s.%s: nested settings structs are not handled by this test", typ, f.Name)
			default:
				out = append(out, setting{
					name:     cmp.Or(f.Tag.Get("envconfig"), strings.ToUpper(f.Name)), // envconfig's fallback
					def:      f.Tag.Get("default"),
					required: f.Tag.Get("required") == "true",
				})
			}
		}
	}
	walk(reflect.TypeOf(spec).Elem())
	return out
}

func defaultOf(t *testing.T, spec any, name string) string {
	t.Helper()
	for _, v := range settingsOf(t, spec) {
		if v.name == name {
			return v.def
		}
	}
	t.Fatalf("%T has no setting %s", spec, name)
	return ""
}

func defaultPort(t *testing.T, spec any, name string) int {
	t.Helper()
	_, p, err := hostPort(defaultOf(t, spec, name))
	if err != nil {
		t.Fatalf("%s default: %v", name, err)
	}
	return p
}

// --- Dockerfile ---

type stage struct {
	name, image  string // name is empty without AS
	instructions []instruction
}

type instruction struct{ cmd, args string }

// parseDockerfile splits a Dockerfile into stages of instructions, joining continued lines.
func parseDockerfile(text string) ([]stage, error) {
	var stages []stage
	var logical strings.Builder
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			logical.WriteString(rest + " ")
			continue
		}
		logical.WriteString(line)
		cmd, args, _ := strings.Cut(logical.String(), " ")
		logical.Reset()
		cmd, args = strings.ToUpper(cmd), strings.TrimSpace(args)
		if cmd == "FROM" {
			fields := slices.DeleteFunc(strings.Fields(args), func(f string) bool { return strings.HasPrefix(f, "--") })
			if len(fields) == 0 {
				return nil, errors.New("FROM without an image")
			}
			st := stage{image: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) > 0 { // ARGs before the first FROM belong to no stage
			stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, instruction{cmd, args})
		}
	}
	return stages, nil
}

// last returns the arguments of the stage's last cmd instruction, the one that takes effect.
func (st stage) last(cmd string) string {
	for _, in := range slices.Backward(st.instructions) {
		if in.cmd == cmd {
			return in.args
		}
	}
	return ""
}

// entrypoint is the stage's ENTRYPOINT, which must be in exec (JSON) form: the shell form needs
// a shell, and distroless has none.
func (st stage) entrypoint() ([]string, error) {
	var args []string
	if err := json.Unmarshal([]byte(st.last("ENTRYPOINT")), &args); err != nil {
		return nil, fmt.Errorf("stage %s: ENTRYPOINT %q is not in exec form: %w", st.name, st.last("ENTRYPOINT"), err)
	}
	return args, nil
}

// pinned reports why an image reference is not pinned to a version, or nil.
func pinned(ref string) error {
	if strings.Contains(ref, "@sha256:") {
		return nil
	}
	name := ref[strings.LastIndex(ref, "/")+1:] // a registry's port is not a tag
	_, tag, _ := strings.Cut(name, ":")
	switch tag {
	case "":
		return errors.New("no tag: it means :latest")
	case "latest":
		return errors.New(":latest is not a version")
	}
	return nil
}

// --- nginx.conf ---

// nginxDirective returns the arguments of the first `name …;` directive.
func nginxDirective(conf, name string) string {
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s+([^;]+);`).FindStringSubmatch(conf)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

// nginxUpstreamServers lists the host:port of every server in the upstream blocks.
func nginxUpstreamServers(conf string) []string {
	var servers []string
	for _, block := range regexp.MustCompile(`(?s)upstream\s+\S+\s*\{(.*?)\}`).FindAllStringSubmatch(conf, -1) {
		for _, m := range regexp.MustCompile(`(?m)^\s*server\s+(\S+?)[\s;]`).FindAllStringSubmatch(block[1], -1) {
			servers = append(servers, m[1])
		}
	}
	return servers
}

func nginxListenPort(t *testing.T, conf string) int {
	t.Helper()
	listen := strings.Fields(nginxDirective(conf, "listen"))
	if len(listen) == 0 {
		t.Fatal("nginx.conf has no listen directive")
	}
	addr := listen[0]
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	_, p, err := hostPort(addr)
	if err != nil {
		t.Fatalf("nginx listen %q: %v", listen[0], err)
	}
	return p
}

// nginxSize parses an nginx size: bytes, or k/m/g multiples of 1024.
func nginxSize(s string) (int64, error) {
	units := map[string]int64{"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
	mult := int64(1)
	for suffix, m := range units {
		if rest, ok := strings.CutSuffix(strings.ToLower(s), suffix); ok {
			s, mult = rest, m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

// nginxDuration parses an nginx time; a bare number is seconds.
func nginxDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// --- addresses ---

// hostPort returns the host and port that a client setting dials: host:port, :port, or a URL.
func hostPort(addr string) (string, int, error) {
	host, p := "", ""
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return "", 0, err
		}
		defaults := map[string]string{"http": "80", "https": "443", "postgres": "5432", "postgresql": "5432"}
		host, p = u.Hostname(), cmp.Or(u.Port(), defaults[u.Scheme])
	} else {
		var err error
		if host, p, err = net.SplitHostPort(addr); err != nil {
			return "", 0, err
		}
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("%q has no port", addr)
	}
	return host, n, nil
}

// flagValue returns the value of a Go-style flag (-name v, -name=v, --name v) in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) && strings.HasPrefix(args[i], "-") {
			return args[i+1]
		}
	}
	return ""
}
