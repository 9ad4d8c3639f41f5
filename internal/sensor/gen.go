package sensor

// The program is built from bpf/sensor.bpf.c with Debian's clang and
// libbpf-dev headers; the generated sensor_bpfel.go and sensor_bpfel.o are
// committed, so building ward needs neither clang nor cgo. Run after
// changing the C source:
//
//	go generate ./internal/sensor
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.17.3 -cc clang -cflags "-O2 -g -Wall -Werror -Ibpf/include" -target bpfel -type event sensor bpf/sensor.bpf.c
