// Command metrics-server is the upstream sigs.k8s.io/metrics-server, built
// against the same Kubernetes staging modules (v0.33.13) as kube-test-plane,
// for `kubectl top` in tskubelet's end-to-end tests. See ../README.md.
//
// It lives in its own module: metrics-server v0.8.0 requires newer grpc,
// golang.org/x/*, prometheus/common and OpenTelemetry modules than
// k8s.io/kubernetes v1.33.13 pins, and putting it into kube-test-plane would
// move the control plane (and etcd) onto those versions.
package main

import (
	"os"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"sigs.k8s.io/metrics-server/cmd/metrics-server/app"
)

func main() {
	os.Exit(cli.Run(app.NewMetricsServerCommand(genericapiserver.SetupSignalHandler())))
}
