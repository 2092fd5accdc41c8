#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "gallery/gallery.h"
#include "server/auth.h"
#include "server/http_gateway.h"
#include "server/internal/parse_error_interceptor.h"
#include "server/service.h"

namespace homeward::server {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", flag, " ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerConfig& c) {
  if (c.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  HW_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(c.tls_cert, "--tls-cert"));
  HW_ASSIGN_OR_RETURN(pair.private_key, ReadPem(c.tls_key, "--tls-key"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<HomewardServer>> HomewardServer::Start(const ServerConfig& config) {
  HW_RETURN_IF_ERROR(ValidateConfig(config));
  std::unique_ptr<HomewardServer> s(new HomewardServer());
  s->config_ = config;
  if (config.insecure_dev) {
    spdlog::warn(
        "*** --insecure-dev: NO API KEYS, every caller is admin \"dev\" ({}); never use "
        "this with real data ***",
        config.listen);
  } else {
    HW_ASSIGN_OR_RETURN(KeyStore keys, KeyStore::Load(config.api_keys_file));
    spdlog::info("loaded {} API keys from {}", keys.size(), config.api_keys_file);
    s->keys_ = std::make_unique<KeyStore>(std::move(keys));
  }
  HW_ASSIGN_OR_RETURN(auto creds, Credentials(config));

  gallery::GalleryOptions go;
  go.data_dir = config.data_dir;
  go.catalog = config.catalog;
  go.pipeline.recognition_model_path =
      config.recognition_model.empty() ? DefaultRecognitionModel() : config.recognition_model;
  go.pipeline.landmark_model_path = config.landmark_model;
  if (config.calibration != "none") {
    go.calibration_path = config.calibration.empty() ? DefaultCalibration() : config.calibration;
  }
  if (config.age_model != "none") {
    const std::string age_model = config.age_model.empty() ? DefaultAgeModel() : config.age_model;
    std::error_code ec;
    if (std::filesystem::is_regular_file(age_model, ec)) {
      go.pipeline.age_model_path = age_model;
      spdlog::info("age model {}: sightings sent without an age get an age estimated from the face",
                   age_model);
    } else {
      spdlog::warn("age model {} not found: sightings sent without an age get no age estimate "
                   "(scripts/setup.sh models converts it)", age_model);
    }
  } else {
    spdlog::info("age model off (--age-model none): sightings sent without an age get no age "
                 "estimate");
  }
  {
    const std::string model =
        config.face_detector_model.empty() ? DefaultFaceDetectorModel() : config.face_detector_model;
    std::error_code ec;
    const bool present = std::filesystem::is_regular_file(model, ec);
    // A model asked for (--detector cnn, or a --face-detector-model path) that is not there
    // stops the start: falling back to HOG would silently miss the turned faces.
    if (!present && config.detector != "hog" &&
        (config.detector == "cnn" || !config.face_detector_model.empty())) {
      return absl::NotFoundError(absl::StrCat(
          "face detector model '", model, "' not found (",
          config.face_detector_model.empty() ? "the default of --detector cnn"
                                             : "--face-detector-model",
          "): give the FaceBoxes ONNX file with --face-detector-model (scripts/setup.sh models "
          "converts it), or run with --detector hog"));
    }
    if (config.detector == "hog" || (config.detector.empty() && !present)) {
      go.pipeline.detector = embed::DetectorKind::kHog;
      if (!present && config.detector.empty()) {
        spdlog::warn("face detector model {} not found: using dlib's HOG detector, which misses "
                     "turned faces and is slower (scripts/setup.sh models converts it)", model);
      }
      spdlog::info("face detector: hog (dlib)");
    } else {
      go.pipeline.detector = embed::DetectorKind::kCnn;
      go.pipeline.face_detector_model_path = model;
      spdlog::info("face detector: cnn ({})", model);
    }
  }
  go.pipeline.workers = config.workers;
  go.pipeline.limits.max_bytes = config.max_request_bytes;
  go.index.factory = config.index_factory;
  go.index.ivf_nprobe = config.ivf_nprobe;
  go.index.hnsw_ef_search = config.hnsw_ef_search;
  go.rebuild_indexes = config.rebuild_index;
  go.lead_min_confidence = config.lead_min_confidence;
  // Only a shared catalog has other writers to follow (the embedded one is locked to this
  // process).
  go.follow_ms = config.follow_ms >= 0 ? config.follow_ms : (config.catalog.empty() ? 0 : 500);
  HW_ASSIGN_OR_RETURN(s->gallery_, gallery::Gallery::Open(go));

  if (config.test_only_clock_offset_days != 0) {
    spdlog::warn(
        "*** --test-only-clock-offset-days {}: the expiry sweep's clock runs ahead; "
        "sightings are deleted early. Tests only. ***",
        config.test_only_clock_offset_days);
  }
  if (config.sighting_retention_days > 0) {
    s->SweepExpiredSightings();  // before serving: nothing expired is served after a downtime
    s->retention_thread_ = std::thread([srv = s.get()] {
      const absl::Duration period = absl::Minutes(srv->config_.retention_sweep_minutes);
      while (true) {
        {
          absl::MutexLock l(&srv->retention_mu_);
          if (srv->retention_mu_.AwaitWithTimeout(absl::Condition(&srv->stop_retention_), period)) {
            return;
          }
        }
        srv->SweepExpiredSightings();
      }
    });
  } else {
    spdlog::info("--sighting-retention-days 0: sightings are kept without limit");
  }

  ServiceOptions so;
  so.insecure_dev = config.insecure_dev;
  so.sighting_retention_days = config.sighting_retention_days;
  so.max_request_bytes = config.max_request_bytes;
  int workers = s->gallery_->pipeline().workers();
  so.threads = std::max(2, workers + 2);  // heavy calls wait on the pipeline; light ones go on
  so.max_queue = config.max_queue;
  s->service_ = std::make_unique<HomewardService>(s->gallery_.get(), s->keys_.get(), so);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, creds, &s->port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));
  // gRPC 1.51 assembles a whole message before it checks the size limit: without a memory
  // quota an oversized request is buffered in full (a 400 MB one took 400 MB). The quota bounds
  // what the transport holds.
  grpc::ResourceQuota quota("homeward-server");
  quota.Resize(
      static_cast<size_t>(std::max<int64_t>(int64_t{256} << 20, 8 * config.max_request_bytes)));
  builder.SetResourceQuota(quota);
  builder.RegisterService(s->service_.get());
  // A request that cannot be parsed (e.g. a string that is not UTF-8) gets INVALID_ARGUMENT
  // with a message rather than gRPC's bare UNIMPLEMENTED.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(std::make_unique<internal::ParseErrorInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(creators));
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    if (s->server_) s->server_->Shutdown();
    s->server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen,
                                               ": the address is in use or not local; choose "
                                               "another --listen"));
  }
  std::string host = config.listen.substr(0, config.listen.rfind(':'));
  s->address_ = absl::StrCat(host, ":", s->port_);
  if (!config.http_listen.empty()) {
    HttpGatewayOptions ho;
    ho.listen = config.http_listen;
    ho.cors_origin = config.cors_origin;
    ho.web_dir = config.web_dir;
    ho.max_request_bytes = config.max_request_bytes;
    HomewardService* service = s->service_.get();
    ho.metrics = [service](std::optional<absl::string_view> authorization) {
      return service->MetricsPage(authorization);
    };
    grpc::ChannelArguments args;  // replies: GetPhoto as large as requests, ExportCase more
    args.SetMaxReceiveMessageSize(
        static_cast<int>(std::max<int64_t>(config.max_request_bytes, kMaxExportBytes) + (1 << 20)));
    args.SetMaxSendMessageSize(static_cast<int>(config.max_request_bytes) + (1 << 20));
    auto http = HttpGateway::Start(s->server_->InProcessChannel(args), ho);
    if (!http.ok()) return http.status();  // ~HomewardServer shuts the gRPC server down
    s->http_ = std::move(*http);
  }
  return s;
}

void HomewardServer::SweepExpiredSightings() {
  const int64_t day_ms = 24LL * 60 * 60 * 1000;
  const int64_t now_ms =
      absl::ToUnixMillis(absl::Now()) + config_.test_only_clock_offset_days * day_ms;
  const absl::Time start = absl::Now();
  absl::StatusOr<int> expired = gallery_->ExpireSightings(
      now_ms, config_.sighting_retention_days * day_ms,
      [](int64_t id) { spdlog::info("retention: expired sighting case {}", id); });
  if (!expired.ok()) {
    spdlog::error("retention sweep: {} (the next sweep retries)", expired.status().ToString());
    return;
  }
  spdlog::info("retention sweep: {} sighting(s) expired (retention {} days) in {:.1f} ms", *expired,
               config_.sighting_retention_days, absl::ToDoubleMilliseconds(absl::Now() - start));
}

void HomewardServer::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (retention_thread_.joinable()) {
    {
      absl::MutexLock l(&retention_mu_);
      stop_retention_ = true;
    }
    retention_thread_.join();  // waits for a sweep in progress
  }
  if (http_) {
    // Stops accepting and finishes the HTTP requests being served (their gRPC calls still
    // run); the stub and its in-process channel go before the grpc::Server.
    http_->Shutdown();
    http_.reset();
  }
  if (server_) {
    spdlog::info("shutting down: {} ms for in-flight calls", config_.shutdown_grace_ms);
    service_->BeginShutdown();
    if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(config_.shutdown_grace_ms));
    server_->Wait();
  }
  server_.reset();
  service_.reset();  // every call has finished: the pool joins its threads
  if (gallery_) {
    if (absl::Status st = gallery_->SaveSnapshots(); !st.ok()) {
      spdlog::error("saving the index snapshots failed: {}", st.ToString());
    }
    gallery_.reset();  // closes the catalog
  }
  spdlog::info("shut down");
}

HomewardServer::~HomewardServer() { Shutdown(); }

std::string HomewardServer::http_address() const { return http_ ? http_->address() : ""; }

}  // namespace homeward::server
