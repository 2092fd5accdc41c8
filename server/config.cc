#include "server/config.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#ifndef HOMEWARD_DEFAULT_MODELS_DIR
#define HOMEWARD_DEFAULT_MODELS_DIR "models"
#endif

namespace homeward::server {

std::string DefaultRecognitionModel() {
  if (const char* env = std::getenv("HOMEWARD_RECOGNITION_MODEL"); env && *env) return env;
  return std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceapi_1.7.15_resnet.dat";
}

std::string DefaultAgeModel() {
  if (const char* env = std::getenv("HOMEWARD_AGE_MODEL"); env && *env) return env;
  return std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceres-deep_3.0.4.onnx";
}

std::string DefaultFaceDetectorModel() {
  if (const char* env = std::getenv("HOMEWARD_FACE_DETECTOR_MODEL"); env && *env) return env;
  return std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceboxes_3.0.4.onnx";
}

std::string DefaultCalibration() {
  return std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/age_calibration_v1.json";
}

std::string ListenHost(const std::string& listen) {
  size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::Status ValidateConfig(const ServerConfig& c) {
  size_t colon = c.listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(c.listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen \"", c.listen, "\" is not HOST:PORT (e.g. 127.0.0.1:50051, [::1]:0)"));
  }
  if (c.insecure_dev && !IsLoopbackHost(ListenHost(c.listen))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--insecure-dev is refused on \"", c.listen,
        "\": it disables API keys, so listen on a loopback address (127.0.0.1, localhost, "
        "[::1]) or drop --insecure-dev and pass --api-keys"));
  }
  if (!c.insecure_dev && c.api_keys_file.empty()) {
    return absl::InvalidArgumentError(
        "no --api-keys FILE: create one with `homeward-server --add-key ROLE --key-id NAME "
        "--api-keys FILE` (or use --insecure-dev on loopback for development)");
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return absl::InvalidArgumentError("give both --tls-cert and --tls-key, or neither");
  }
  if (c.data_dir.empty()) return absl::InvalidArgumentError("--data-dir must not be empty");
  if (!c.catalog.empty() && c.catalog.rfind("postgresql://", 0) != 0 &&
      c.catalog.rfind("postgres://", 0) != 0) {
    return absl::InvalidArgumentError(
        "--catalog must be a postgresql://USER@HOST:PORT/DB URL (leave it out for the SQLite "
        "catalog in --data-dir)");
  }
  if (!c.detector.empty() && c.detector != "cnn" && c.detector != "hog") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--detector \"", c.detector, "\": choose cnn (FaceBoxes) or hog (dlib)"));
  }
  if (c.workers < 0 || c.workers > 256) {
    return absl::InvalidArgumentError("--workers must be 0 (auto) .. 256");
  }
  if (c.ivf_nprobe < 1 || c.ivf_nprobe > 65536 || c.hnsw_ef_search < 1 ||
      c.hnsw_ef_search > 65536) {
    return absl::InvalidArgumentError("--ivf-nprobe and --hnsw-ef-search must be 1 .. 65536");
  }
  if (c.max_request_bytes < 1024 || c.max_request_bytes > (1LL << 30)) {
    return absl::InvalidArgumentError("--max-request-bytes must be 1024 .. 1073741824");
  }
  if (c.follow_ms < -1 || c.follow_ms > 3600000) {
    return absl::InvalidArgumentError(
        "--follow-ms must be 0 (off) .. 3600000, or -1 for the default");
  }
  if (!(c.lead_min_confidence >= 0 && c.lead_min_confidence <= 1)) {
    return absl::InvalidArgumentError("--lead-min-confidence must be 0 .. 1");
  }
  if (c.max_queue < 1 || c.max_queue > 100000) {
    return absl::InvalidArgumentError("--max-queue must be 1 .. 100000");
  }
  if (c.shutdown_grace_ms < 0) {
    return absl::InvalidArgumentError("--shutdown-grace-ms must be >= 0");
  }
  if (c.sighting_retention_days < 0 || c.sighting_retention_days > 36500) {
    return absl::InvalidArgumentError(
        "--sighting-retention-days must be 0 (keep forever) .. 36500");
  }
  if (c.retention_sweep_minutes < 1 || c.retention_sweep_minutes > 7 * 24 * 60) {
    return absl::InvalidArgumentError("--retention-sweep-minutes must be 1 .. 10080 (a week)");
  }
  if (c.test_only_clock_offset_days < 0 || c.test_only_clock_offset_days > 36500) {
    return absl::InvalidArgumentError("--test-only-clock-offset-days must be 0 .. 36500");
  }
  if (!c.http_listen.empty()) {
    size_t http_colon = c.http_listen.rfind(':');
    int http_port = -1;
    if (http_colon == std::string::npos || http_colon == 0 ||
        !absl::SimpleAtoi(c.http_listen.substr(http_colon + 1), &http_port) || http_port < 0 ||
        http_port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--http-listen \"", c.http_listen, "\" is not HOST:PORT (e.g. 127.0.0.1:8080)"));
    }
    if (c.insecure_dev && !IsLoopbackHost(ListenHost(c.http_listen))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--insecure-dev is refused with --http-listen \"", c.http_listen,
          "\": listen on a loopback address or drop --insecure-dev"));
    }
  }
  return absl::OkStatus();
}

namespace {

// Copies the JSON config's keys into `c` unless the flag was given on the command line.
absl::Status ApplyJsonConfig(const std::string& path, CLI::App& app, ServerConfig& c) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read --config ", path));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--config ", path, " must hold one JSON object, e.g. {\"listen\": ...}"));
  }
  using Setter = std::function<bool(const nlohmann::json&)>;
  auto str = [](std::string* out) -> Setter {
    return [out](const nlohmann::json& v) {
      if (!v.is_string()) return false;
      *out = v.get<std::string>();
      return true;
    };
  };
  auto integer = [](auto* out) -> Setter {
    return [out](const nlohmann::json& v) {
      if (!v.is_number_integer()) return false;
      *out = v.get<std::decay_t<decltype(*out)>>();
      return true;
    };
  };
  const std::map<std::string, Setter> setters = {
      {"listen", str(&c.listen)},
      {"data-dir", str(&c.data_dir)},
      {"catalog", str(&c.catalog)},
      {"insecure-dev",
       [&c](const nlohmann::json& v) {
         if (!v.is_boolean()) return false;
         c.insecure_dev = v.get<bool>();
         return true;
       }},
      {"api-keys", str(&c.api_keys_file)},
      {"recognition-model", str(&c.recognition_model)},
      {"landmark-model", str(&c.landmark_model)},
      {"calibration", str(&c.calibration)},
      {"age-model", str(&c.age_model)},
      {"detector", str(&c.detector)},
      {"face-detector-model", str(&c.face_detector_model)},
      {"workers", integer(&c.workers)},
      {"index-factory", str(&c.index_factory)},
      {"ivf-nprobe", integer(&c.ivf_nprobe)},
      {"hnsw-ef-search", integer(&c.hnsw_ef_search)},
      {"lead-min-confidence",
       [&c](const nlohmann::json& v) {
         if (!v.is_number()) return false;
         c.lead_min_confidence = v.get<double>();
         return true;
       }},
      {"follow-ms", integer(&c.follow_ms)},
      {"max-request-bytes", integer(&c.max_request_bytes)},
      {"max-queue", integer(&c.max_queue)},
      {"tls-cert", str(&c.tls_cert)},
      {"tls-key", str(&c.tls_key)},
      {"shutdown-grace-ms", integer(&c.shutdown_grace_ms)},
      {"http-listen", str(&c.http_listen)},
      {"cors-origin", str(&c.cors_origin)},
      {"web-dir", str(&c.web_dir)},
      {"sighting-retention-days", integer(&c.sighting_retention_days)},
      {"retention-sweep-minutes", integer(&c.retention_sweep_minutes)},
      {"test-only-clock-offset-days", integer(&c.test_only_clock_offset_days)},
  };
  for (const auto& [key, value] : j.items()) {
    auto it = setters.find(key);
    if (it == setters.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--config ", path, ": unknown key \"", key, "\" (keys are the flag names)"));
    }
    if (app.get_option("--" + key)->count() > 0) continue;  // the command line wins
    if (!it->second(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--config ", path, ": key \"", key, "\" has the wrong JSON type"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

CommandLine ParseCommandLine(int argc, char** argv) {
  CommandLine out;
  ServerConfig& c = out.config;
  CLI::App app{"homeward-server: the Homeward gRPC service"};
  std::string config_file;
  AddKeyCommand add_key;
  app.add_option("--config", config_file, "JSON file with the same keys as the flags");
  app.add_option("--listen", c.listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--data-dir", c.data_dir, "catalog, photos and index snapshots")
      ->capture_default_str();
  app.add_option("--catalog", c.catalog,
                 "the catalog in PostgreSQL instead of --data-dir: postgresql://USER@HOST:PORT/DB "
                 "(photos go into the database; --data-dir keeps the index snapshots)");
  app.add_flag("--insecure-dev", c.insecure_dev,
               "no API keys, every caller is admin \"dev\" (loopback only)");
  app.add_option("--api-keys", c.api_keys_file, "API key file (JSON lines, see docs/API.md)");
  app.add_option("--recognition-model", c.recognition_model,
                 "dlib face-recognition network (default $HOMEWARD_RECOGNITION_MODEL or " +
                     DefaultRecognitionModel() + ")");
  app.add_option("--age-model", c.age_model,
                 "age from the face for sightings sent without an age, ONNX (default "
                 "$HOMEWARD_AGE_MODEL or " + DefaultAgeModel() + "; \"none\": no estimate)");
  app.add_option("--detector", c.detector,
                 "face detector: cnn (FaceBoxes: turned and small faces, faster) or hog (dlib); "
                 "default cnn when its model is present, else hog");
  app.add_option("--face-detector-model", c.face_detector_model,
                 "FaceBoxes ONNX for --detector cnn (default $HOMEWARD_FACE_DETECTOR_MODEL or " +
                     DefaultFaceDetectorModel() + ")");
  app.add_option("--landmark-model", c.landmark_model, "dlib 68-point shape predictor")
      ->capture_default_str();
  app.add_option("--calibration", c.calibration,
                 "age-aware confidence calibration, JSON (default " + DefaultCalibration() +
                     "; \"none\": rank by distance)");
  app.add_option("--workers", c.workers, "face pipeline workers (0: one per core)")
      ->capture_default_str();
  app.add_option("--index-factory", c.index_factory, "Faiss index factory string")
      ->capture_default_str();
  app.add_option("--ivf-nprobe", c.ivf_nprobe, "IVF lists probed per search (1..65536)")
      ->capture_default_str();
  app.add_option("--hnsw-ef-search", c.hnsw_ef_search, "HNSW search breadth (1..65536)")
      ->capture_default_str();
  app.add_flag("--rebuild-index", c.rebuild_index,
               "ignore the index snapshots and rebuild (and train) from the catalog");
  app.add_option("--lead-min-confidence", c.lead_min_confidence,
                 "cross-match candidates at or above this confidence become leads (0..1)")
      ->capture_default_str();
  app.add_option("--follow-ms", c.follow_ms,
                 "apply other servers' changes from a shared catalog every N ms (0: off; "
                 "default: 500 with a shared catalog, off with the embedded one)")
      ->capture_default_str();
  app.add_option("--max-request-bytes", c.max_request_bytes,
                 "largest request message; larger ones get RESOURCE_EXHAUSTED")
      ->capture_default_str();
  app.add_option("--max-queue", c.max_queue,
                 "heavy calls in flight before new ones get UNAVAILABLE")
      ->capture_default_str();
  app.add_option("--tls-cert", c.tls_cert, "PEM certificate chain (enables TLS)");
  app.add_option("--tls-key", c.tls_key, "PEM private key");
  app.add_option("--shutdown-grace-ms", c.shutdown_grace_ms,
                 "time in-flight calls get at shutdown before they are cancelled")
      ->capture_default_str();
  app.add_option("--http-listen", c.http_listen,
                 "HOST:PORT of the JSON/HTTP gateway and web pages (default: none)");
  app.add_option("--cors-origin", c.cors_origin,
                 "origin allowed to call the HTTP gateway cross-origin (default: none)");
  app.add_option("--web-dir", c.web_dir, "static pages served at / (default: <source>/web)");
  app.add_option("--sighting-retention-days", c.sighting_retention_days,
                 "delete a SIGHTING case this many days after its last activity unless a lead "
                 "of it is open, confirmed for DNA or needs a better photo (0: keep forever; "
                 "docs/PRIVACY.md)")
      ->capture_default_str();
  app.add_option("--retention-sweep-minutes", c.retention_sweep_minutes,
                 "how often expired sightings are deleted (also once at start-up)")
      ->capture_default_str();
  app.add_option("--test-only-clock-offset-days", c.test_only_clock_offset_days,
                 "TESTS ONLY: run the expiry sweep's clock this many days ahead (deletes "
                 "sightings early; never in production)")
      ->capture_default_str();
  auto* add_key_opt = app.add_option("--add-key", add_key.role,
                                     "create an API key of this role, print it once and append "
                                     "its hash to --api-keys, then exit");
  app.add_option("--key-id", add_key.key_id, "name of the key created by --add-key");
  RevokeKeyCommand revoke_key;
  auto* revoke_key_opt =
      app.add_option("--revoke-key", revoke_key.key_id,
                     "mark this key id revoked in --api-keys (a running server notices at its "
                     "next call), then exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    out.exit_code = app.exit(e);
    return out;
  }
  if (add_key_opt->count() > 0) {
    if (add_key.key_id.empty() || c.api_keys_file.empty()) {
      std::cerr << "--add-key needs --key-id NAME and --api-keys FILE\n";
      out.exit_code = 2;
      return out;
    }
    add_key.api_keys_file = c.api_keys_file;
    out.add_key = add_key;
    return out;
  }
  if (revoke_key_opt->count() > 0) {
    if (c.api_keys_file.empty()) {
      std::cerr << "--revoke-key needs --api-keys FILE\n";
      out.exit_code = 2;
      return out;
    }
    revoke_key.api_keys_file = c.api_keys_file;
    out.revoke_key = revoke_key;
    return out;
  }
  if (!config_file.empty()) {
    if (absl::Status s = ApplyJsonConfig(config_file, app, c); !s.ok()) {
      std::cerr << s.message() << "\n";
      out.exit_code = 2;
      return out;
    }
  }
  if (c.recognition_model.empty()) c.recognition_model = DefaultRecognitionModel();
  return out;
}

}  // namespace homeward::server
