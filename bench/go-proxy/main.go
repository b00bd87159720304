// The bench's Go baseline: a plain forwarding MCP proxy on github.com/mark3labs/mcp-go (the library the
// TBXark/mcp-proxy Go proxy is built on). One upstream (stdio command or Streamable HTTP URL), one
// Streamable HTTP face at /mcp; tools are listed once at start and every call is forwarded as is.
// No policies, no telemetry: the floor a Go proxy sets. Prints {"url": ...} on stdout once listening.
//
//	go-proxy -stdio 'node bench/upstream-echo.ts'   |   go-proxy -url http://127.0.0.1:PORT/mcp
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	stdio := flag.String("stdio", "", "upstream command line (split on spaces)")
	url := flag.String("url", "", "upstream Streamable HTTP URL")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve /mcp on")
	flag.Parse()

	ctx := context.Background()
	upstream, err := connect(ctx, *stdio, *url)
	if err != nil {
		log.Fatalf("go-proxy: upstream: %v", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "go-proxy", Version: "1.0.0"}
	if _, err := upstream.Initialize(ctx, init); err != nil {
		log.Fatalf("go-proxy: initialize: %v", err)
	}
	tools, err := upstream.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		log.Fatalf("go-proxy: tools/list: %v", err)
	}

	proxy := server.NewMCPServer("go-proxy", "1.0.0", server.WithToolCapabilities(false))
	for _, tool := range tools.Tools {
		proxy.AddTool(tool, func(ctx context.Context, request mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return upstream.CallTool(ctx, request)
		})
	}

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("go-proxy: listen: %v", err)
	}
	address, _ := json.Marshal(map[string]string{"url": fmt.Sprintf("http://%s/mcp", listener.Addr())})
	fmt.Fprintln(os.Stdout, string(address))
	mux := http.NewServeMux()
	mux.Handle("/mcp", server.NewStreamableHTTPServer(proxy))
	log.Fatal(http.Serve(listener, mux))
}

func connect(ctx context.Context, stdio, url string) (*client.Client, error) {
	if stdio != "" {
		argv := strings.Fields(stdio)
		return client.NewStdioMCPClient(argv[0], os.Environ(), argv[1:]...)
	}
	if url == "" {
		return nil, fmt.Errorf("give -stdio or -url")
	}
	c, err := client.NewStreamableHttpClient(url)
	if err != nil {
		return nil, err
	}
	return c, c.Start(ctx)
}
