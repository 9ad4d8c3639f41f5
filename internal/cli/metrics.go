package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/metrics"
	"github.com/ward-runtime/ward/internal/nodeconfig"
)

// metricsCommand is `ward metrics serve`: the node daemon that follows the
// decision logs and serves Prometheus metrics (docs/metrics.md).
func metricsCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "metrics",
		Short: "serve Prometheus metrics counted from the node's decision logs",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(metricsServeCommand(env))
	return c
}

func metricsServeCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve --listen ADDR [--log GLOB]...",
		Short: "follow the decision logs and serve /metrics until stopped",
		Long: "Follows the decision logs every front door writes (by inode, surviving rotation) and serves\n" +
			"their counts as Prometheus metrics on /metrics. Without --log, the decision log of the node\n" +
			"configuration ($WARD_CONFIG or /etc/ward/ward.yaml) is followed.",
		Args: cobra.NoArgs,
	}
	listen := c.Flags().String("listen", "", "address to serve on, e.g. :9743 or 127.0.0.1:9743")
	logs := c.Flags().StringArray("log", nil, "decision log to follow, a glob (repeatable; default: the node configuration's decisionLog)")
	fromStart := c.Flags().Bool("from-start", false, "count the entries already in the logs at start (default: only new ones)")
	c.MarkFlagRequired("listen")
	c.RunE = func(*cobra.Command, []string) error {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return status(runMetricsServe(ctx, env, *listen, *logs, *fromStart))
	}
	return c
}

func runMetricsServe(ctx context.Context, env *Env, listen string, logs []string, fromStart bool) int {
	if len(logs) == 0 {
		cfg, err := nodeconfig.Load(nodeconfig.Sources{Getenv: os.Getenv})
		if err != nil {
			return fail(env, ExitBadInput, err)
		}
		if cfg.LogPath() == "" {
			return fail(env, ExitBadInput, fmt.Errorf("the node configuration %s turns the decision log off: nothing to count", cfg.Source))
		}
		logs = []string{cfg.LogPath()}
	}
	m, err := metrics.New(metrics.Config{Logs: logs, FromStart: fromStart})
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fail(env, ExitError, fmt.Errorf("listening on %s: %w", listen, err))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(env.Stderr, "ward metrics: serving http://%s/metrics from %v\n", ln.Addr(), logs)
	followed := make(chan error, 1)
	go func() { followed <- m.Run(ctx) }()
	var runErr error
	select {
	case <-ctx.Done():
		runErr = <-followed
	case runErr = <-followed:
	case err := <-served:
		return fail(env, ExitError, fmt.Errorf("serving metrics: %w", err))
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		runErr = errors.Join(runErr, err)
	}
	if runErr != nil {
		return fail(env, ExitError, runErr)
	}
	return ExitOK
}
