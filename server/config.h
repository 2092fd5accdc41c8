// Configuration of homeward-server: command-line flags (CLI11) and an optional JSON file
// (--config) with the same keys ("listen", "data-dir", ...). A flag given on the command
// line wins over the file.
//
// THREAD SAFETY: plain values. OWNERSHIP: returned by value.
#ifndef HOMEWARD_SERVER_CONFIG_H_
#define HOMEWARD_SERVER_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace homeward::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";  // HOST:PORT; port 0 picks a free port
  std::string data_dir = "homeward-data";
  // Where the catalog lives when not in data_dir: a postgresql://USER@HOST:PORT/DB URL (libpq's
  // PG* environment variables and ~/.pgpass fill what it leaves out). "" (default): the
  // embedded SQLite catalog and the photo files in data_dir, which then holds only the index
  // snapshots.
  std::string catalog;
  bool insecure_dev = false;      // no API keys, every caller is admin "dev"; loopback only
  std::string api_keys_file;      // required unless insecure_dev
  std::string recognition_model;  // default: $HOMEWARD_RECOGNITION_MODEL or models/...
  std::string landmark_model = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";
  std::string calibration;  // age calibration JSON; "" = DefaultCalibration(); "none" = off
  // Age from the face for sightings sent without an age (ONNX, docs/AGE.md); "" =
  // DefaultAgeModel(); "none" = off. A missing file is logged at start-up and means no estimate.
  std::string age_model;
  // The face detector: "cnn" (FaceBoxes, docs/ACCURACY.md "Face detectors") or "hog" (dlib);
  // "" = cnn when its model file is present, else hog with a warning at start-up.
  std::string detector;
  std::string face_detector_model;  // "" = DefaultFaceDetectorModel()
  int workers = 0;  // pipeline workers; 0 = one per hardware thread
  std::string index_factory = "IDMap2,Flat";
  int ivf_nprobe = 16;       // IVF lists probed per search (IVF1024,Flat: 16 found every
                             // in-radius neighbour at 1M faces, docs/BENCHMARKS.md)
  int hnsw_ef_search = 128;  // HNSW search breadth
  bool rebuild_index = false;
  double lead_min_confidence = 0.5;  // cross-match candidates at or above become leads (0..1)
  // How often (ms) to apply other servers' changes from a shared catalog's change log; 0 =
  // never (the embedded catalog has no other writer), -1 = the default: 500 with a shared
  // catalog, 0 with the embedded one.
  int follow_ms = -1;
  int64_t max_request_bytes = 20 << 20;  // larger messages: RESOURCE_EXHAUSTED
  int max_queue = 32;             // heavy calls in flight (running + queued); more: UNAVAILABLE
  std::string tls_cert, tls_key;  // PEM files; both or neither
  int shutdown_grace_ms = 10000;  // in-flight calls get this long at shutdown, then cancelled
  std::string http_listen;  // HOST:PORT of the JSON/HTTP gateway (docs/WEB.md); "" = none
  std::string cors_origin;  // "" = no CORS; "*" or one origin such as https://app.example
  std::string web_dir;      // static pages served at / by the gateway; "" = <source>/web
  // Data minimisation (docs/PRIVACY.md): a SIGHTING case without an open, confirmed-for-DNA or
  // needs-better-photo lead is deleted this many days after its last activity; 0 = keep.
  int sighting_retention_days = 90;
  int retention_sweep_minutes = 60;  // how often the expiry sweep runs (also once at start)
  // TEST ONLY: the expiry sweep's clock runs this many days ahead of the real one (lets the
  // tests age data without sleeping). Never set it in production: it deletes sightings early.
  int test_only_clock_offset_days = 0;
};

// `homeward-server --add-key ROLE --key-id NAME --api-keys FILE`.
struct AddKeyCommand {
  std::string role, key_id, api_keys_file;
};

// `homeward-server --revoke-key KEY_ID --api-keys FILE`.
struct RevokeKeyCommand {
  std::string key_id, api_keys_file;
};

struct CommandLine {
  ServerConfig config;
  std::optional<AddKeyCommand> add_key;
  std::optional<RevokeKeyCommand> revoke_key;
  int exit_code = -1;  // >= 0: exit now with this code (--help, or a parse error printed)
};

// Parses argv (and the --config file). Prints help or errors itself (exit_code set).
CommandLine ParseCommandLine(int argc, char** argv);

// Checks a complete config: INVALID_ARGUMENT (saying what to fix) for a bad listen address,
// --insecure-dev on a non-loopback host, no --api-keys without --insecure-dev, half a TLS
// pair, or a limit out of range.
absl::Status ValidateConfig(const ServerConfig& config);

// The host part of HOST:PORT ("[::1]:5" -> "::1"), and whether it is a loopback address.
std::string ListenHost(const std::string& listen);
bool IsLoopbackHost(const std::string& host);

// The recognition model path to use when none was configured.
std::string DefaultRecognitionModel();

// The age calibration file to use when none was configured (models/age_calibration_v1.json).
std::string DefaultCalibration();
// $HOMEWARD_AGE_MODEL, else models/faceres-deep_3.0.4.onnx (scripts/setup.sh models).
std::string DefaultAgeModel();
// $HOMEWARD_FACE_DETECTOR_MODEL, else models/faceboxes_3.0.4.onnx (scripts/setup.sh models).
std::string DefaultFaceDetectorModel();

}  // namespace homeward::server

#endif  // HOMEWARD_SERVER_CONFIG_H_
