// HomewardServer: a running homeward-server, used by main.cc and by in-process tests.
//
// Start loads the API keys, opens the gallery (models, catalog, indexes) under the data dir,
// and serves homeward.v1.Homeward, grpc.health.v1.Health and server reflection on
// config.listen. Shutdown stops accepting calls, gives in-flight calls
// config.shutdown_grace_ms, cancels the rest, then saves the index snapshots and closes the
// catalog. With config.sighting_retention_days > 0, Start deletes the expired sightings before
// serving and a background thread does so again every config.retention_sweep_minutes
// (docs/PRIVACY.md).
//
// THREAD SAFETY: Shutdown may be called from any thread, more than once.
#ifndef HOMEWARD_SERVER_SERVER_H_
#define HOMEWARD_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/config.h"

namespace grpc {
class Server;
}

namespace homeward::gallery {
class Gallery;
}

namespace homeward::server {

class HomewardService;
class HttpGateway;
class KeyStore;

class HomewardServer {
 public:
  // INVALID_ARGUMENT for a bad config (ValidateConfig), the key file's errors, the gallery's
  // errors (e.g. NOT_FOUND for a missing model), UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HomewardServer>> Start(const ServerConfig& config);
  ~HomewardServer();  // Shutdown()
  HomewardServer(const HomewardServer&) = delete;
  HomewardServer& operator=(const HomewardServer&) = delete;

  void Shutdown();
  int port() const { return port_; }
  // HOST:PORT with the bound port, e.g. "127.0.0.1:43121".
  const std::string& address() const { return address_; }
  // The JSON/HTTP gateway's HOST:PORT when config.http_listen is set (docs/WEB.md), else "".
  std::string http_address() const;
  // The gallery being served (e.g. for tests reading the audit trail); null after Shutdown.
  gallery::Gallery* gallery() { return gallery_.get(); }

 private:
  HomewardServer() = default;

  ServerConfig config_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<gallery::Gallery> gallery_;
  std::unique_ptr<HomewardService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpGateway> http_;  // forwards to server_ over its in-process channel
  int port_ = 0;
  std::string address_;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;

  // Data minimisation: expired sightings are deleted once before serving and then every
  // config.retention_sweep_minutes on retention_thread_, until Shutdown.
  void SweepExpiredSightings();
  absl::Mutex retention_mu_;
  bool stop_retention_ ABSL_GUARDED_BY(retention_mu_) = false;
  std::thread retention_thread_;
};

}  // namespace homeward::server

#endif  // HOMEWARD_SERVER_SERVER_H_
