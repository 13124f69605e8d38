// Command memberstub serves many simulated members' status endpoints for bench/bench_poller.py:
// one grpc-go server listening on many ports of 127.0.0.1, answering EnsembleOperator's
// RequestStatus with a reply the benchmark prepared (the serialized Response the Python member
// servicer gives). On the benchmark's two cores the members share the CPU with the poller, while in
// a cluster each answers on its own node; a Go server costs them a small fraction of what a Python
// one does, so the poller's figures are its own. The benchmark prints the CPU the stub used.
//
//	memberstub -ports 2500 -hung 10 -request HEX -reply HEX -denied HEX
//
// Prints one line, the ports (healthy, then hung) as JSON, and serves until stdin closes.
// A hung member answers only 100 ms after the caller's deadline.
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
)

// rawCodec passes messages through as bytes: requests are compared, replies sent as prepared.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

type member struct {
	request, reply, denied []byte
	hung                   bool
}

func requestStatus(srv any, ctx context.Context, decode func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	m := srv.(*member)
	var request []byte
	if err := decode(&request); err != nil {
		return nil, err
	}
	if m.hung {
		if deadline, ok := ctx.Deadline(); ok {
			time.Sleep(time.Until(deadline) + 100*time.Millisecond)
		}
	}
	if bytes.Equal(request, m.request) {
		return &m.reply, nil
	}
	return &m.denied, nil // another member's name: refused, as the Python servicer refuses it
}

func service() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "convergedcomputing.org.grpc.v1.EnsembleOperator",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "RequestStatus", Handler: requestStatus}},
	}
}

func mustHex(name, value string) []byte {
	decoded, err := hex.DecodeString(value)
	if err != nil {
		log.Fatalf("-%s: %v", name, err)
	}
	return decoded
}

func listen(server *grpc.Server, count int) []int {
	ports := make([]int, 0, count)
	for i := 0; i < count; i++ {
		listener, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatalf("listen: %v", err)
		}
		ports = append(ports, listener.Addr().(*net.TCPAddr).Port)
		go func() { _ = server.Serve(listener) }()
	}
	return ports
}

func main() {
	portCount := flag.Int("ports", 1, "healthy members (one port each)")
	hungCount := flag.Int("hung", 0, "hung members (one port each)")
	request := flag.String("request", "", "hex of the StatusRequest a member answers")
	reply := flag.String("reply", "", "hex of the Response to it")
	denied := flag.String("denied", "", "hex of the Response to any other request")
	flag.Parse()
	healthy := &member{request: mustHex("request", *request), reply: mustHex("reply", *reply),
		denied: mustHex("denied", *denied)}
	hung := &member{request: healthy.request, reply: healthy.reply, denied: healthy.denied, hung: true}
	servers := []*grpc.Server{grpc.NewServer(grpc.ForceServerCodec(rawCodec{})),
		grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))}
	servers[0].RegisterService(service(), healthy)
	servers[1].RegisterService(service(), hung)
	ports := map[string][]int{"ports": listen(servers[0], *portCount), "hung": listen(servers[1], *hungCount)}
	line, _ := json.Marshal(ports)
	fmt.Println(string(line))
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, server := range servers {
		server.Stop()
	}
}
