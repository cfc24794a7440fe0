// Command kube-test-plane is a multi-call binary holding the upstream
// Kubernetes control plane (and the upstream kubelet as a benchmark baseline)
// for tskubelet's tests. One binary means one link, which keeps the CI build
// short on a 2-core machine.
//
// Usage:
//
//	kube-test-plane <command> [flags...]
//
// where <command> is one of etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet, version. The binary may also be invoked through a
// symlink named after a command (busybox style).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"

	_ "time/tzdata" // CronJob time zones (as upstream's kube-apiserver/kcm mains)

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	"k8s.io/component-base/version"

	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func runCobra(newCmd func() *cobra.Command) func() int {
	return func() int { return cli.Run(newCmd()) }
}

// commands maps a command name to its entry point. Each entry point parses
// os.Args[1:] (os.Args[0] is the command name by then) and returns an exit code.
var commands = map[string]func() int{
	"etcd": func() int {
		// etcdmain.Main parses args[1:] and exits the process itself on error.
		etcdmain.Main(os.Args)
		return 0
	},
	"kube-apiserver":          runCobra(apiserver.NewAPIServerCommand),
	"kube-controller-manager": runCobra(controllermanager.NewControllerManagerCommand),
	"kube-scheduler":          runCobra(func() *cobra.Command { return scheduler.NewSchedulerCommand() }),
	"kubelet":                 runCobra(kubelet.NewKubeletCommand),
	"version": func() int {
		fmt.Printf("kube-test-plane kubernetes %s\n", version.Get().GitVersion)
		return 0
	},
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: kube-test-plane <command> [flags...]\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %s\n", n)
	}
}

func main() {
	// Invoked through a symlink named after a command?
	if run, ok := commands[filepath.Base(os.Args[0])]; ok {
		os.Exit(run())
	}
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	run, ok := commands[os.Args[1]]
	if !ok {
		if os.Args[1] != "-h" && os.Args[1] != "--help" && os.Args[1] != "help" {
			fmt.Fprintf(os.Stderr, "kube-test-plane: unknown command %q\n", os.Args[1])
		}
		usage()
		os.Exit(2)
	}
	// Drop our own name so the command sees the argument list it expects.
	os.Args = os.Args[1:]
	os.Exit(run())
}
