package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// RSS returns a process's resident memory in bytes, from VmRSS in /proc/<pid>/status.
func RSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS of %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for process %d", pid)
}

// Goroutines scrapes a Prometheus /metrics page and returns go_goroutines.
func Goroutines(ctx context.Context, c *http.Client, metricsURL string) (int, error) {
	v, err := MetricValue(ctx, c, metricsURL, "go_goroutines")
	return int(v), err
}

// MetricValue scrapes a Prometheus /metrics page and returns one series' value (series as it
// appears on the page, labels included).
func MetricValue(ctx context.Context, c *http.Client, metricsURL, series string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", metricsURL, resp.Status)
	}
	for line := range strings.SplitSeq(string(page), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("%s has no %s", metricsURL, series)
}

// Machine describes the computer a run measured on, since the figures mean little without it.
type Machine struct {
	CPUs     int    `json:"nproc"`
	CPUModel string `json:"cpu_model"`
	RAMBytes int64  `json:"ram_bytes"`
	Go       string `json:"go_version"`
	OS       string `json:"os_arch"`
	// LoadAverage is /proc/loadavg when the run started: what else the shared machine was doing.
	LoadAverage string `json:"load_average"`
}

// ThisMachine reads the machine's description from /proc and the Go runtime.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.RAMBytes = kb << 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAverage = strings.TrimSpace(string(b))
	}
	return m
}

// clockTicks is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on every Linux the stack
// runs on (sysconf(_SC_CLK_TCK) would need cgo).
const clockTicks = 100

// TreeCPU returns the CPU time used so far by process pid and its descendants: each live one's
// user and system time, and what its exited children it waited for used (a Postgres server's
// finished backends). Postgres's backends each start a session of their own, so a process
// group would miss them; the parent links do not.
func TreeCPU(pid int) (time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	type proc struct {
		parent int
		ticks  int64
	}
	procs := map[int]proc{}
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", id))
		if err != nil {
			continue // exited meanwhile
		}
		// The command name, in parentheses, may hold spaces: the fields follow its last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
		if len(f) < 15 {
			continue
		}
		p := proc{}
		p.parent, _ = strconv.Atoi(f[1])
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			p.ticks += n
		}
		procs[id] = p
	}
	if _, ok := procs[pid]; !ok {
		return 0, fmt.Errorf("no process %d", pid)
	}
	var ticks int64
	for id, p := range procs {
		// Walk up from each process: it counts when pid is among its ancestors (or it is pid).
		for at, hops := id, 0; at > 0 && hops < 64; at, hops = procs[at].parent, hops+1 {
			if at == pid {
				ticks += p.ticks
				break
			}
			if _, ok := procs[at]; !ok {
				break
			}
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// StolenCPU returns the CPU time the hypervisor has given other guests while this machine's
// CPUs wanted to run, summed over them since boot: /proc/stat's steal. On a shared VM it is
// what makes the same run slower one hour than the next, which no process's own time shows.
func StolenCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseSteal(string(b))
}

// parseSteal reads the steal time off /proc/stat's first line: "cpu user nice system idle
// iowait irq softirq steal ...", in clock ticks.
func parseSteal(stat string) (time.Duration, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat starts %q, not the CPUs' total with a steal column", line)
	}
	ticks, err := strconv.ParseInt(f[8], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/stat's steal: %w", err)
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
