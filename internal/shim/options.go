package shim

import (
	"bytes"
	"errors"
	"fmt"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	toml "github.com/pelletier/go-toml/v2"

	"github.com/ward-runtime/ward/internal/bounded"
)

// maxOptionsFile bounds a runtimeoptions ConfigPath file.
const maxOptionsFile = 1 << 20

// Options are what containerd tells the shim about a container's runtime:
// the runc options it would give containerd's own runc shim, and the ward
// configuration file the handler names, if any.
type Options struct {
	Runc *runcoptions.Options
	// WardConfig is the ward shim configuration file named by the handler;
	// "" when the handler names none (see ConfigPath for the fallbacks).
	WardConfig string
}

// tomlOptions is the handler's options table when containerd sends it as
// runtimeoptions.v1.Options: containerd does that for every runtime_type
// other than io.containerd.runc.v2, with the table TOML-encoded in
// ConfigBody (or in the file ConfigPath names). The keys are runc's option
// names, so a handler can move between runtime types without rewriting
// its table, plus WardConfig.
type tomlOptions struct {
	// TypeUrl and ConfigPath are runtimeoptions' own fields: containerd
	// encodes the whole table, so they appear in the body too.
	TypeUrl    string `toml:"TypeUrl"`
	ConfigPath string `toml:"ConfigPath"`

	WardConfig string `toml:"WardConfig"`

	BinaryName    string `toml:"BinaryName"`
	Root          string `toml:"Root"`
	SystemdCgroup bool   `toml:"SystemdCgroup"`
	NoPivotRoot   bool   `toml:"NoPivotRoot"`
	NoNewKeyring  bool   `toml:"NoNewKeyring"`
	ShimCgroup    string `toml:"ShimCgroup"`
	IoUid         uint32 `toml:"IoUid"`
	IoGid         uint32 `toml:"IoGid"`
	CriuImagePath string `toml:"CriuImagePath"`
	CriuWorkPath  string `toml:"CriuWorkPath"`
}

// DecodeOptions reads a task's options, whichever of the two forms
// containerd sent. No options at all gives runc's defaults. Any other type,
// or a key ward does not know, is an error: a typo in a handler's table
// must not silently drop a setting.
func DecodeOptions(a typeurl.Any) (Options, error) {
	if a == nil || len(a.GetValue()) == 0 && a.GetTypeUrl() == "" {
		return Options{Runc: &runcoptions.Options{}}, nil
	}
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		return Options{}, fmt.Errorf("decoding runtime options (%s): %w", a.GetTypeUrl(), err)
	}
	switch o := v.(type) {
	case *runcoptions.Options:
		return Options{Runc: o}, nil
	case *runtimeoptions.Options:
		return decodeRuntimeOptions(o)
	default:
		return Options{}, fmt.Errorf("decoding runtime options: unsupported type %T (want runc options or runtimeoptions.v1.Options)", v)
	}
}

func decodeRuntimeOptions(o *runtimeoptions.Options) (Options, error) {
	body := o.GetConfigBody()
	source := "ConfigBody"
	if p := o.GetConfigPath(); p != "" {
		data, err := bounded.ReadFile(p, maxOptionsFile)
		if err != nil {
			return Options{}, fmt.Errorf("reading runtime options ConfigPath: %w", err)
		}
		body, source = data, p
	}
	var t tomlOptions
	dec := toml.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return Options{}, fmt.Errorf("decoding runtime options %s: unknown keys: %s", source, strict.String())
		}
		return Options{}, fmt.Errorf("decoding runtime options %s: %w", source, err)
	}
	return Options{
		WardConfig: t.WardConfig,
		Runc: &runcoptions.Options{
			BinaryName:    t.BinaryName,
			Root:          t.Root,
			SystemdCgroup: t.SystemdCgroup,
			NoPivotRoot:   t.NoPivotRoot,
			NoNewKeyring:  t.NoNewKeyring,
			ShimCgroup:    t.ShimCgroup,
			IoUid:         t.IoUid,
			IoGid:         t.IoGid,
			CriuImagePath: t.CriuImagePath,
			CriuWorkPath:  t.CriuWorkPath,
		},
	}, nil
}
