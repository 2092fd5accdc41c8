// HttpGateway: the JSON/HTTP face of homeward.v1.Homeward for web frontends (docs/WEB.md).
//
// Every API route is translated into ONE call of the generated gRPC stub over the server's
// in-process channel, with the HTTP `Authorization: Bearer KEY` header forwarded as the
// `authorization` metadata: auth, roles, audit, limits and validation are the gRPC service's
// own. Bodies use protobuf's canonical JSON mapping; photo uploads may also be
// multipart/form-data. The gateway also serves the static pages of `web_dir` at `/`.
//
// Responses carry the security headers (CSP self-only, nosniff, no-referrer, DENY framing,
// Cache-Control: no-store) and, when `cors_origin` is set, CORS headers for that origin.
//
// THREAD SAFETY: Shutdown may be called from any thread, more than once. The channel must
// stay usable until Shutdown returns. OWNERSHIP: Start returns the sole owner.
#ifndef HOMEWARD_SERVER_HTTP_GATEWAY_H_
#define HOMEWARD_SERVER_HTTP_GATEWAY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace grpc {
class Channel;
}

namespace homeward::server {

struct HttpGatewayOptions {
  std::string listen;       // HOST:PORT; port 0 picks a free port
  std::string cors_origin;  // "" (default): no CORS headers; "*" or one origin
  std::string web_dir;      // static pages; "" = the source tree's web/; missing: API only
  int64_t max_request_bytes = 20 << 20;  // the gRPC limit; HTTP bodies may be 4/3 + 64 KiB
  int call_timeout_ms = 120000;          // deadline of every forwarded call
  // `GET /metrics`: the Prometheus page for the request's Authorization header (nullopt when
  // absent), or the error to answer with. Unset: 404.
  std::function<absl::StatusOr<std::string>(std::optional<absl::string_view>)> metrics;
};

class HttpGateway {
 public:
  // INVALID_ARGUMENT for a malformed listen address, UNAVAILABLE when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Start(std::shared_ptr<grpc::Channel> channel,
                                                            const HttpGatewayOptions& options);
  ~HttpGateway();  // Shutdown()
  HttpGateway(const HttpGateway&) = delete;
  HttpGateway& operator=(const HttpGateway&) = delete;

  // Stops accepting connections and waits for the requests being served.
  void Shutdown();
  int port() const;
  const std::string& address() const;  // HOST:PORT with the bound port

  class Impl;

 private:
  explicit HttpGateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace homeward::server

#endif  // HOMEWARD_SERVER_HTTP_GATEWAY_H_
