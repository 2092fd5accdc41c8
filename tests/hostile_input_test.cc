// A bad-input corpus through the real homeward-server binary: >= 1,000 seeded malformed
// requests over gRPC and the JSON/HTTP gateway (truncated and bit-flipped JPEG/PNG/WebP/BMP
// made from the real demo photos, headers declaring huge sizes, empty and 100 MB bodies,
// wrong JSON types, broken JSON, unicode, control characters and NUL, SQL metacharacters and
// path-like text in every text field, filter and id). Each gets its specific status code;
// text that may legitimately be stored must round-trip byte for byte. Afterwards the server
// is healthy and still serves, nothing was written outside its data directory (the server
// runs with a sentinel cwd and TMPDIR), the data directory holds only its own layout, and RSS
// is back near the baseline measured after a warm-up. docs/reliability/hostile-input.md.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "tests/embed_test_util.h"
#include "tests/rpc_call.h"
#include "tests/server_process.h"

namespace homeward {
namespace {

namespace pb = ::homeward::v1;
namespace fs = std::filesystem;
using homeward::testing::Base64;
using homeward::testing::CallRpc;
using homeward::testing::DecodeBgr;
using homeward::testing::DemoDir;
using homeward::testing::EncodeJpeg;
using homeward::testing::EncodePng;
using homeward::testing::MakeTempDirOrDie;
using homeward::testing::OneFaceSample2;
using homeward::testing::ReadFileOrDie;
using homeward::testing::ReadWholeFile;
using homeward::testing::RecognitionModelPath;
using homeward::testing::Rpc;
using homeward::testing::ServerOptions;
using homeward::testing::ServerProcess;
using Json = nlohmann::json;
using Stub = pb::Homeward::Stub;

constexpr uint32_t kSeed = 20261129;
constexpr int64_t kMaxRequestBytes = 20 << 20;  // the server's default --max-request-bytes
constexpr size_t kHugeBody = size_t{100} << 20;  // "a 100 MB body"
// RSS after the corpus may exceed the warm-up baseline by at most max(128 MB, 25%): gRPC
// assembles a 100 MB message from ~16 KB slices before refusing it, and glibc keeps such freed
// small blocks in its arenas (measured: +30..105 MB after the corpus, almost all during the
// oversize bodies). More passes of the oversize bodies move RSS up or down by what the
// allocator happens to keep (measured per pass: -10..+115 MB; one CI run's second pass added
// 115 MB, so a per-pass bound fails on noise), but they must not add up: twelve 100 MB requests
// in a row plateau at +210 MB from the 5th on (gRPC's memory quota, server.cc, bounds the
// buffers). So after three more passes (51 oversize requests, 5 GB of bodies) RSS stays within
// 384 MB of the baseline; a server that kept a tenth of each refused body would exceed it.
constexpr int64_t kRssSlackKb = 128 << 10;
constexpr double kRssSlackFraction = 0.25;
constexpr int kOversizeRepeats = 3;
constexpr int64_t kRssPlateauKb = 384 << 10;
// Under AddressSanitizer (scripts/asan.sh) freed memory sits in ASan's quarantine (256 MB by
// default) instead of going back to the allocator, so RSS says nothing about our allocations:
// the RSS bounds are printed but not asserted in that build.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssMeaningful = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kRssMeaningful = false;
#else
constexpr bool kRssMeaningful = true;
#endif
#else
constexpr bool kRssMeaningful = true;
#endif

// ---------------------------------------------------------------------------------------------
// The server process.

int64_t VmRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// VmRssKb once it is at most `bound_kb`, or after 5 s of idle waiting: gRPC and the allocator
// return large buffers a moment after the calls that used them end.
int64_t SettledRssKb(pid_t pid, int64_t bound_kb) {
  int64_t rss = VmRssKb(pid);
  for (int i = 0; i < 10 && rss > bound_kb; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    rss = VmRssKb(pid);
  }
  return rss;
}

// Every entry under `root`, relative, directories with a trailing '/'.
std::set<std::string> Tree(const fs::path& root) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    std::string rel = fs::relative(it->path(), root, ec).string();
    out.insert(it->is_directory(ec) ? rel + "/" : rel);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bytes.

std::string PercentEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string Encode(const cv::Mat& img, const char* ext, const std::vector<int>& params = {}) {
  std::vector<uchar> buf;
  if (!cv::imencode(ext, img, buf, params)) throw std::runtime_error(std::string("imencode ") + ext);
  return std::string(buf.begin(), buf.end());
}

uint32_t Crc32(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : s) {
    c ^= ch;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

void PutLe(std::string& s, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

// A real PNG whose IHDR is rewritten to declare width x height (CRC fixed up).
std::string PngDeclaring(std::string png, uint32_t width, uint32_t height) {
  std::string ihdr = png.substr(12, 17);  // "IHDR" + 13 bytes
  ihdr.replace(4, 4, Be32(width));
  ihdr.replace(8, 4, Be32(height));
  png.replace(12, 17, ihdr);
  png.replace(29, 4, Be32(Crc32(ihdr)));
  return png;
}

// A real JPEG whose first SOF segment declares width x height.
std::string JpegDeclaring(std::string jpeg, uint16_t width, uint16_t height) {
  size_t i = 2;
  while (i + 9 < jpeg.size()) {
    unsigned char marker = static_cast<unsigned char>(jpeg[i + 1]);
    size_t len = (static_cast<unsigned char>(jpeg[i + 2]) << 8) | static_cast<unsigned char>(jpeg[i + 3]);
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      jpeg[i + 5] = static_cast<char>(height >> 8);
      jpeg[i + 6] = static_cast<char>(height);
      jpeg[i + 7] = static_cast<char>(width >> 8);
      jpeg[i + 8] = static_cast<char>(width);
      return jpeg;
    }
    i += 2 + len;
  }
  throw std::runtime_error("no SOF");
}

// A WebP whose extended-format (VP8X) header declares a canvas of width x height.
std::string WebpVp8xDeclaring(uint32_t width, uint32_t height) {
  std::string w = "RIFF" + std::string(4, '\0') + "WEBPVP8X" + std::string(4, '\0') +
                  std::string(4, '\0') + std::string(6, '\0');
  PutLe(w, 16, 10, 4);
  PutLe(w, 24, width - 1, 3);
  PutLe(w, 27, height - 1, 3);
  PutLe(w, 4, w.size() - 8, 4);
  return w;
}

// A real lossy WebP ("VP8 " chunk) whose frame header declares width x height (14 bits each).
std::string WebpVp8Declaring(std::string webp, uint16_t width, uint16_t height) {
  if (webp.compare(12, 4, "VP8 ") != 0) throw std::runtime_error("not a VP8 WebP");
  PutLe(webp, 26, width & 0x3FFF, 2);
  PutLe(webp, 28, height & 0x3FFF, 2);
  return webp;
}

// A real lossless WebP ("VP8L") whose header declares width x height (1..16384).
std::string WebpVp8lDeclaring(std::string webp, uint32_t width, uint32_t height) {
  if (webp.compare(12, 4, "VP8L") != 0) throw std::runtime_error("not a VP8L WebP");
  uint32_t b = static_cast<uint8_t>(webp[21]) | (static_cast<uint8_t>(webp[22]) << 8) |
               (static_cast<uint8_t>(webp[23]) << 16) | (uint32_t{static_cast<uint8_t>(webp[24])} << 24);
  b = (b & ~0x0FFFFFFFu) | ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14);
  PutLe(webp, 21, b, 4);
  return webp;
}

// A real BMP whose header declares width x height (signed, as BMP stores them).
std::string BmpDeclaring(std::string bmp, int32_t width, int32_t height) {
  PutLe(bmp, 18, static_cast<uint32_t>(width), 4);
  PutLe(bmp, 22, static_cast<uint32_t>(height), 4);
  return bmp;
}

std::string Truncate(const std::string& s, std::mt19937& rng, size_t keep_tail = 8) {
  size_t max_cut = s.size() - keep_tail;  // strictly before the format's end marker
  return s.substr(0, 1 + rng() % (max_cut - 1));
}

std::string FlipBits(std::string s, std::mt19937& rng, int flips) {
  for (int i = 0; i < flips; ++i) s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Outcomes and probes.

struct Outcome {
  std::string code;  // a gRPC code name, or "<http status>/<body code>" for HTTP
  std::string message;
};

struct Probe {
  std::string category;
  std::string label;
  std::set<std::string> expect;
  std::function<Outcome()> run;
};

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

Outcome FromGrpc(const grpc::Status& s) { return {CodeName(s.error_code()), s.error_message()}; }

// The HTTP outcome; an error body must be JSON {"code", "message"} (else "<status>/NOT_JSON").
Outcome FromHttp(const httplib::Result& r, Json* body = nullptr) {
  if (!r) return {"NO_RESPONSE:" + httplib::to_string(r.error()), ""};
  Json j = Json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (body) *body = j;
  std::string status = std::to_string(r->status);
  if (r->status == 200) return {"200/OK", ""};
  if (j.is_discarded() || !j.is_object() || !j.contains("code") || !j["code"].is_string() ||
      !j.contains("message")) {
    return {status + "/NOT_JSON", r->body.substr(0, 200)};
  }
  return {status + "/" + j["code"].get<std::string>(), j["message"].get<std::string>()};
}

// `needle` in `hay`, ASCII case-insensitive (as the catalog's filters match).
bool ContainsAsciiCi(std::string hay, std::string needle) {
  auto lower = [](std::string& s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  lower(hay);
  lower(needle);
  return hay.find(needle) != std::string::npos;
}

struct World {
  std::unique_ptr<ServerProcess> server;  // in root: server.log (stderr), server.out, data/
  fs::path root, data, cwd, tmp, log;
  std::string http_host = "127.0.0.1";
  int http_port = 0;
  std::map<std::string, std::string> keys;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Stub> stub;
  // Warm-up state.
  std::string fam_case, fam_face, fam_photo, found_case, sighting_case, sighting_face, lead_id;
  std::string tiny_png;   // a small face-less photo for the text probes (cheap to analyse)
  std::string face_jpeg;  // a small photo with a face (not the MISSING child): stores a sighting
};
World* W = nullptr;

template <typename Req, typename Resp>
grpc::Status Call(Rpc<Req, Resp> method, const std::string& who, const Req& req, Resp* resp) {
  return CallRpc(*W->stub, method, who.empty() ? "" : W->keys.at(who), req, resp);
}

std::unique_ptr<httplib::Client> Http() {
  auto c = std::make_unique<httplib::Client>(W->http_host, W->http_port);
  c->set_read_timeout(120, 0);
  c->set_write_timeout(120, 0);
  c->set_connection_timeout(10, 0);
  return c;
}

httplib::Headers As(const std::string& who) {
  return {{"Authorization", "Bearer " + W->keys.at(who)}};
}

// grpc.health.v1.Health/Check for the whole server: SERVING is the bytes 08 01.
bool HealthServing() {
  grpc::GenericStub generic(W->channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&done](grpc::Status s) { done.set_value(s); });
  if (!done.get_future().get().ok()) return false;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return false;
  std::string bytes;
  for (auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  return bytes == std::string("\x08\x01", 2);
}

// Sends `head` and then `body_size` bytes (as one Content-Length body, or chunked) over a raw
// socket, reading while writing so that an early answer is seen; returns "<status>/<code>".
Outcome RawHttpHuge(const std::string& head, size_t body_size, bool chunked) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(W->http_port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return {"NO_CONNECT", ""};
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  std::string out = head;
  const std::string chunk(64 << 10, 'A');
  size_t sent_body = 0, out_pos = 0;
  std::string response;
  bool writing = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (writing && out_pos == out.size()) {
      out.clear();
      out_pos = 0;
      if (sent_body < body_size) {
        size_t n = std::min(chunk.size(), body_size - sent_body);
        if (chunked) {
          char hex[32];
          std::snprintf(hex, sizeof hex, "%zx\r\n", n);
          out = hex + chunk.substr(0, n) + "\r\n";
        } else {
          out = chunk.substr(0, n);
        }
        sent_body += n;
      } else if (chunked && sent_body == body_size) {
        out = "0\r\n\r\n";
        sent_body = body_size + 1;
      } else {
        writing = false;
      }
    }
    pollfd p{fd, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 1000) < 0) break;
    if (p.revents & POLLIN) {
      char buf[4096];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) response.append(buf, n);
      if (n == 0 || (n < 0 && errno != EAGAIN)) break;
      size_t end = response.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::smatch m;
        std::regex len_re("Content-Length: *([0-9]+)", std::regex::icase);
        std::string headers = response.substr(0, end);
        if (std::regex_search(headers, m, len_re) &&
            response.size() >= end + 4 + std::stoul(m[1].str())) {
          break;
        }
      }
    }
    if (writing && (p.revents & POLLOUT)) {
      ssize_t n = send(fd, out.data() + out_pos, out.size() - out_pos, MSG_NOSIGNAL);
      if (n > 0) out_pos += n;
      if (n < 0 && errno != EAGAIN) writing = false;  // the server closed: read its answer
    }
    if (p.revents & (POLLERR | POLLHUP) && !(p.revents & POLLIN)) break;
  }
  close(fd);
  if (response.rfind("HTTP/1.1 ", 0) != 0) return {"NO_RESPONSE", ""};
  std::string status = response.substr(9, 3);
  size_t end = response.find("\r\n\r\n");
  std::smatch m;
  std::string headers = response.substr(0, end);
  size_t length = std::string::npos;  // the server may go on answering the rest as requests
  if (std::regex_search(headers, m, std::regex("Content-Length: *([0-9]+)", std::regex::icase))) {
    length = std::stoul(m[1].str());
  }
  Json j = Json::parse(response.substr(end + 4, length), nullptr, false);
  if (j.is_discarded() || !j.contains("code")) return {status + "/NOT_JSON", ""};
  return {status + "/" + j["code"].get<std::string>(), j.value("message", "")};
}

// ---------------------------------------------------------------------------------------------
// Hostile text.

struct Text {
  std::string kind;  // sql, unicode, control, path, format
  std::string value;
};

std::vector<Text> HostileTexts() {
  const std::string pid = std::to_string(getpid());
  return {
      {"sql", "'; DROP TABLE cases;--"},
      {"sql", "\" OR 1=1 --"},
      {"sql", "' OR '1'='1"},
      {"sql", "%"},
      {"sql", "_"},
      {"sql", "%_%' ESCAPE '\\"},
      {"sql", "Robert'); DROP TABLE photos; --"},
      {"sql", "1; DELETE FROM audit; SELECT * FROM sqlite_master"},
      {"sql", "' UNION SELECT key_sha256, 1, 2 FROM keys --"},
      {"unicode", "Zo\xC3\xAB \xC3\x85ngstr\xC3\xB6m"},
      {"unicode", "\xE6\x9D\x8E\xE5\xB0\x8F\xE6\x98\x8E"},                        // CJK
      {"unicode", "\xD9\x85\xD8\xAD\xD9\x85\xD8\xAF"},                            // Arabic
      {"unicode", "\xE2\x80\xAE" "evil.exe\xE2\x80\xAC"},                        // RTL override
      {"unicode", "\xF0\x9F\x91\xA7\xF0\x9F\x8F\xBD child"},                     // emoji + modifier
      {"unicode", "\xEF\xBB\xBF" "a\xE2\x80\x8B" "b\xE2\x80\x8D" "c"},            // BOM, zero widths
      {"unicode", "e\xCC\x81\xCC\x81\xCC\x81 \xEF\xBF\xBF \xF4\x8F\xBF\xBF"},   // combining, U+FFFF
      {"control", std::string("a\0b", 3)},
      {"control", std::string("\0lead", 5)},
      {"control", "\x01\x02\x03\x1b[31mred\x1b[0m\x07"},
      {"control", "line1\r\nline2\ttab\x0b\x0c"},
      {"control", "\x7f\x08\x08\x08 backspaced"},
      {"path", "../../etc/passwd"},
      {"path", "/etc/passwd"},
      {"path", "..\\..\\windows\\system32\\config"},
      {"path", "/tmp/homeward_hostile_" + pid + "_pwned"},
      {"path", "photos/ab/cd/../../../../../../tmp/x"},
      {"path", "file:///etc/shadow"},
      {"path", "~/.ssh/id_rsa"},
      {"format", "%s%s%s%n%x {} {0} {:>1000000}"},
  };
}

// An image target: how malformed image bytes reach the server.
enum class Target { kAddPhoto, kSighting, kSearch, kCompareA, kCompareB };
const char* TargetName(Target t) {
  switch (t) {
    case Target::kAddPhoto: return "AddPhoto";
    case Target::kSighting: return "SubmitSighting";
    case Target::kSearch: return "Search";
    case Target::kCompareA: return "Compare.a";
    case Target::kCompareB: return "Compare.b";
  }
  return "?";
}

Outcome SendImageGrpc(Target t, const std::string& bytes) {
  switch (t) {
    case Target::kAddPhoto: {
      pb::AddPhotoRequest r;
      r.set_case_id(W->found_case);
      r.set_image(bytes);
      pb::AddPhotoResponse resp;
      return FromGrpc(Call(&Stub::AddPhoto, "adm", r, &resp));
    }
    case Target::kSighting: {
      pb::SubmitSightingRequest r;
      r.set_image(bytes);
      pb::SubmitSightingResponse resp;
      return FromGrpc(Call(&Stub::SubmitSighting, "vol", r, &resp));
    }
    case Target::kSearch: {
      pb::SearchRequest r;
      r.set_image(bytes);
      pb::SearchResponse resp;
      return FromGrpc(Call(&Stub::Search, "inv", r, &resp));
    }
    case Target::kCompareA:
    case Target::kCompareB: {
      pb::CompareRequest r;
      pb::FaceRef* img = t == Target::kCompareA ? r.mutable_a() : r.mutable_b();
      pb::FaceRef* face = t == Target::kCompareA ? r.mutable_b() : r.mutable_a();
      img->set_image(bytes);
      face->set_face_id(W->fam_face);
      pb::CompareResponse resp;
      return FromGrpc(Call(&Stub::Compare, "inv", r, &resp));
    }
  }
  return {"?", ""};
}

// The same over HTTP: JSON with base64, or multipart/form-data (file name path-like).
Outcome SendImageHttp(Target t, const std::string& bytes, bool multipart) {
  std::string path, field = "image";
  std::string who = "inv";
  Json body;
  switch (t) {
    case Target::kAddPhoto:
      path = "/v1/cases/" + W->found_case + "/photos";
      who = "adm";
      body = {{"image", Base64(bytes)}};
      break;
    case Target::kSighting:
      path = "/v1/sightings";
      who = "vol";
      body = {{"image", Base64(bytes)}};
      break;
    case Target::kSearch:
      path = "/v1/search";
      body = {{"image", Base64(bytes)}};
      break;
    case Target::kCompareA:
    case Target::kCompareB: {
      path = "/v1/compare";
      bool a = t == Target::kCompareA;
      field = a ? "a.image" : "b.image";
      body = {{a ? "a" : "b", {{"image", Base64(bytes)}}},
              {a ? "b" : "a", {{"faceId", W->fam_face}}}};
      break;
    }
  }
  if (!multipart) return FromHttp(Http()->Post(path.c_str(), As(who), body.dump(), "application/json"));
  httplib::MultipartFormDataItems items = {
      {field, bytes, "../../../../tmp/hostile_upload_" + std::to_string(getpid()) + ".jpg",
       "image/jpeg"}};
  if (t == Target::kCompareA || t == Target::kCompareB) {
    items.push_back({t == Target::kCompareA ? "b.faceId" : "a.faceId", W->fam_face, "", ""});
  }
  return FromHttp(Http()->Post(path.c_str(), As(who), items));
}

std::string HttpExpect(const std::string& grpc_code) {
  static const std::map<std::string, std::string> kMap = {
      {"OK", "200/OK"},
      {"INVALID_ARGUMENT", "400/INVALID_ARGUMENT"},
      {"FAILED_PRECONDITION", "400/FAILED_PRECONDITION"},
      {"RESOURCE_EXHAUSTED", "413/RESOURCE_EXHAUSTED"},
      {"NOT_FOUND", "404/NOT_FOUND"},
  };
  return kMap.at(grpc_code);
}

// ---------------------------------------------------------------------------------------------

class HostileInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(RecognitionModelPath()) || !fs::exists(DemoDir() + "/sample2.jpg") ||
        !fs::exists("/usr/share/dlib/shape_predictor_68_face_landmarks.dat")) {
      return;  // the test skips
    }
    W = new World;
    W->root = MakeTempDirOrDie("hw_hostile_");
    W->server = std::make_unique<ServerProcess>(HOMEWARD_SERVER_BINARY, W->root.string());
    W->data = W->server->data_dir();
    W->cwd = W->root / "cwd";
    W->tmp = W->root / "tmp";
    W->log = W->server->log_path();
    fs::create_directories(W->cwd);
    fs::create_directories(W->tmp);
    for (auto [id, role] : std::vector<std::pair<std::string, std::string>>{
             {"vol", "volunteer"}, {"fam", "family"}, {"inv", "investigator"}, {"adm", "admin"}}) {
      std::string error;
      W->keys[id] = W->server->AddKey(id, role, &error);
      ASSERT_FALSE(W->keys[id].empty()) << "--add-key " << role << " failed: " << error;
    }

    ServerOptions options;
    options.http = true;
    options.flags = {"--workers", "2", "--shutdown-grace-ms", "5000"};
    if (!fs::exists(std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/age_calibration_v1.json")) {
      options.flags.insert(options.flags.end(), {"--calibration", "none"});
    }
    // Sentinels: a write relative to the cwd or into $TMPDIR would show up there.
    options.child.cwd = W->cwd.string();
    options.child.env = {{"TMPDIR", W->tmp.string()}};
    options.timeout_s = 120;
    std::string error;
    ASSERT_TRUE(W->server->Start(options, &error)) << "homeward-server did not start: " << error;
    const std::string http = W->server->http_address();
    W->http_port = std::stoi(http.substr(http.rfind(':') + 1));
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(256 << 20);  // the 100 MB bodies must leave the client
    W->channel =
        grpc::CreateCustomChannel(W->server->address(), grpc::InsecureChannelCredentials(), args);
    W->stub = pb::Homeward::NewStub(W->channel);
  }

  static void TearDownTestSuite() {
    if (W == nullptr) return;
    W->stub.reset();
    W->channel.reset();
    W->server.reset();  // SIGKILL if still running
    std::error_code ec;
    if (!getenv("HOMEWARD_KEEP_HOSTILE_DIR")) fs::remove_all(W->root, ec);
    delete W;
    W = nullptr;
  }

  void SetUp() override {
    if (W == nullptr) GTEST_SKIP() << "models or demo photos absent (scripts/setup.sh models)";
    ASSERT_TRUE(W->stub) << "the server did not start";
  }
};

// Valid traffic before the baseline: cases, photos with faces, a sighting that makes a lead,
// searches, compares, crops and the same over HTTP, so that lazy allocations are done.
void WarmUp() {
  pb::CreateCaseRequest create;
  create.mutable_case_()->set_kind(pb::MISSING);
  create.mutable_case_()->set_display_name("Warm Up");
  create.mutable_case_()->set_place("Springfield");
  pb::Case c;
  grpc::Status s = Call(&Stub::CreateCase, "fam", create, &c);
  ASSERT_TRUE(s.ok()) << s.error_message();
  W->fam_case = c.id();
  pb::AddPhotoRequest add;
  add.set_case_id(W->fam_case);
  add.set_image(OneFaceSample2());
  pb::AddPhotoResponse added;
  s = Call(&Stub::AddPhoto, "fam", add, &added);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(added.faces_size(), 1);
  W->fam_face = added.faces(0).face_id();
  W->fam_photo = added.photo_id();

  create.mutable_case_()->set_kind(pb::FOUND);
  create.mutable_case_()->set_display_name("Found Warm Up");
  s = Call(&Stub::CreateCase, "adm", create, &c);
  ASSERT_TRUE(s.ok()) << s.error_message();
  W->found_case = c.id();

  // The one-face sample2 photo cropped by 8% and re-encoded: the same child, other bytes -> a
  // lead.
  cv::Mat img = DecodeBgr(OneFaceSample2());
  int dx = img.cols * 8 / 100, dy = img.rows * 8 / 100;
  cv::Mat crop = img(cv::Rect(dx, dy, img.cols - 2 * dx, img.rows - 2 * dy)).clone();
  pb::SubmitSightingRequest sighting;
  sighting.set_image(EncodeJpeg(crop, 85));
  sighting.set_place("Main Street");
  pb::SubmitSightingResponse seen;
  s = Call(&Stub::SubmitSighting, "vol", sighting, &seen);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(seen.results_size(), 1);
  W->sighting_case = seen.case_id();
  W->sighting_face = seen.results(0).query_face().face_id();

  pb::ListLeadsRequest leads_req;
  pb::ListLeadsResponse leads;
  s = Call(&Stub::ListLeads, "inv", leads_req, &leads);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_GE(leads.leads_size(), 1) << "the warm-up sighting made no lead";
  W->lead_id = leads.leads(0).id();

  for (int i = 1; i <= 3; ++i) {  // multi-face photos through search and compare
    pb::SearchRequest search;
    search.set_image(ReadFileOrDie(DemoDir() + "/sample" + std::to_string(i) + ".jpg"));
    pb::SearchResponse found;
    s = Call(&Stub::Search, "inv", search, &found);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  pb::CompareRequest cmp;
  cmp.mutable_a()->set_face_id(W->fam_face);
  cmp.mutable_b()->set_image(EncodeJpeg(crop, 90));
  pb::CompareResponse compared;
  ASSERT_TRUE(Call(&Stub::Compare, "inv", cmp, &compared).ok());
  pb::GetFaceCropRequest crop_req;
  crop_req.set_face_id(W->fam_face);
  pb::GetFaceCropResponse crop_resp;
  ASSERT_TRUE(Call(&Stub::GetFaceCrop, "fam", crop_req, &crop_resp).ok());
  pb::GetPhotoRequest photo_req;
  photo_req.set_photo_id(W->fam_photo);
  pb::GetPhotoResponse photo;
  ASSERT_TRUE(Call(&Stub::GetPhoto, "fam", photo_req, &photo).ok());

  cv::Mat tiny(64, 64, CV_8UC3);
  cv::randu(tiny, cv::Scalar::all(90), cv::Scalar::all(110));
  W->tiny_png = EncodePng(tiny);
  pb::SubmitSightingRequest tiny_sighting;
  tiny_sighting.set_image(W->tiny_png);
  ASSERT_TRUE(Call(&Stub::SubmitSighting, "vol", tiny_sighting, &seen).ok());
  // No face: nothing stored, so no ids ("0" is not an id).
  EXPECT_EQ(seen.case_id(), "");
  EXPECT_EQ(seen.photo_id(), "");
  EXPECT_FALSE(seen.no_face_reason().empty());
  // A small photo of another child that stores a sighting (for the sighting text probes).
  for (int i = 3; i <= 6 && W->face_jpeg.empty(); ++i) {
    cv::Mat photo = DecodeBgr(ReadFileOrDie(DemoDir() + "/sample" + std::to_string(i) + ".jpg"));
    cv::Mat small;
    cv::resize(photo, small, cv::Size(360, photo.rows * 360 / photo.cols), 0, 0, cv::INTER_AREA);
    pb::SubmitSightingRequest try_sighting;
    try_sighting.set_image(EncodeJpeg(small, 90));
    ASSERT_TRUE(Call(&Stub::SubmitSighting, "vol", try_sighting, &seen).ok());
    if (!seen.case_id().empty()) W->face_jpeg = try_sighting.image();
  }
  ASSERT_FALSE(W->face_jpeg.empty()) << "no demo photo at 360 px stored a sighting";

  for (const char* path : {"/v1/stats", "/v1/cases", "/v1/leads"}) {
    auto r = Http()->Get(path, As("inv"));
    ASSERT_TRUE(r && r->status == 200) << path;
  }
  auto r = Http()->Post("/v1/search", As("inv"),
                        Json{{"faceId", W->fam_face}, {"topK", 5}}.dump(), "application/json");
  ASSERT_TRUE(r && r->status == 200);
}

// The corpus. Every probe is deterministic (one seeded generator, fixed order).
std::vector<Probe> BuildCorpus() {
  std::vector<Probe> probes;
  std::mt19937 rng(kSeed);
  const std::vector<Target> targets = {Target::kAddPhoto, Target::kSighting, Target::kSearch,
                                       Target::kCompareA, Target::kCompareB};
  auto next_target = [&, i = 0]() mutable { return targets[i++ % targets.size()]; };

  // The real demo photos, and the same scaled to 240 px wide (cheap to analyse) as JPEG, PNG,
  // lossy and lossless WebP and BMP.
  std::vector<std::string> originals, jpegs, pngs, webps, webpls, bmps;
  for (int i = 1; i <= 6; ++i) {
    originals.push_back(ReadFileOrDie(DemoDir() + "/sample" + std::to_string(i) + ".jpg"));
    cv::Mat img = DecodeBgr(originals.back()), small;
    cv::resize(img, small, cv::Size(240, img.rows * 240 / img.cols), 0, 0, cv::INTER_AREA);
    jpegs.push_back(EncodeJpeg(small, 90));
    pngs.push_back(EncodePng(small));
    webps.push_back(Encode(small, ".webp", {cv::IMWRITE_WEBP_QUALITY, 80}));
    webpls.push_back(Encode(small, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
    bmps.push_back(Encode(small, ".bmp"));
  }
  const std::set<std::string> kInvalid = {"INVALID_ARGUMENT"};
  const std::set<std::string> kTooBig = {"RESOURCE_EXHAUSTED"};

  auto grpc_image = [&](const std::string& category, const std::string& label, std::string bytes,
                        std::set<std::string> expect) {
    Target t = next_target();
    if (t == Target::kAddPhoto && expect.count("OK")) expect.insert("FAILED_PRECONDITION");
    probes.push_back({category, std::string(TargetName(t)) + " " + label, expect,
                      [t, bytes = std::move(bytes)] { return SendImageGrpc(t, bytes); }});
  };
  auto http_image = [&](const std::string& category, const std::string& label, std::string bytes,
                        const std::set<std::string>& grpc_expect, bool multipart) {
    Target t = next_target();
    std::set<std::string> expect;
    for (const auto& e : grpc_expect) expect.insert(HttpExpect(e));
    if (t == Target::kAddPhoto && grpc_expect.count("OK")) expect.insert("400/FAILED_PRECONDITION");
    probes.push_back({category,
                      std::string("HTTP ") + (multipart ? "multipart " : "json ") + TargetName(t) +
                          " " + label,
                      expect, [t, multipart, bytes = std::move(bytes)] {
                        return SendImageHttp(t, bytes, multipart);
                      }});
  };

  // 1. Truncated images: always INVALID_ARGUMENT (a half photo gives wrong descriptors).
  for (int i = 0; i < 48; ++i) {
    const auto& src = i % 8 == 0 ? originals[i / 8 % 6] : jpegs[i % 6];
    grpc_image("image.truncated", "jpeg#" + std::to_string(i), Truncate(src, rng, 2), kInvalid);
  }
  for (int i = 0; i < 30; ++i) grpc_image("image.truncated", "png#" + std::to_string(i), Truncate(pngs[i % 6], rng, 8), kInvalid);
  for (int i = 0; i < 30; ++i) {
    const auto& src = i % 2 ? webps[i % 6] : webpls[i % 6];
    grpc_image("image.truncated", "webp#" + std::to_string(i), Truncate(src, rng, 1), kInvalid);
  }
  for (int i = 0; i < 20; ++i) grpc_image("image.truncated", "bmp#" + std::to_string(i), Truncate(bmps[i % 6], rng, 1), kInvalid);
  for (int i = 0; i < 20; ++i) {
    http_image("image.truncated", "jpeg#" + std::to_string(i), Truncate(jpegs[i % 6], rng, 2),
               kInvalid, i % 2);
  }

  // 2. Bit flips: decodable or not; never anything but a specific answer.
  const std::set<std::string> kFlipOutcomes = {"OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"};
  for (int i = 0; i < 150; ++i) {
    const std::vector<std::string>* pool[] = {&jpegs, &pngs, &webps, &webpls, &bmps};
    const char* names[] = {"jpeg", "png", "webp", "webpl", "bmp"};
    int f = i % 5;
    const std::string& src = i % 25 == 24 ? originals[i / 25 % 6] : (*pool[f])[i / 5 % 6];
    grpc_image("image.bitflip", std::string(names[f]) + "#" + std::to_string(i),
               FlipBits(src, rng, 1 + rng() % 8), kFlipOutcomes);
  }
  for (int i = 0; i < 20; ++i) {
    http_image("image.bitflip", "jpeg#" + std::to_string(i), FlipBits(jpegs[i % 6], rng, 1 + rng() % 4),
               kFlipOutcomes, i % 2);
  }

  // 3. Headers declaring sizes far beyond the 40 MP limit, or empty sizes.
  struct Declared {
    std::string label;
    std::string bytes;
    std::set<std::string> expect;
  };
  std::vector<Declared> declared = {
      {"png 30000x30000", PngDeclaring(pngs[0], 30000, 30000), kTooBig},
      {"png 65535x65535", PngDeclaring(pngs[1], 65535, 65535), kTooBig},
      {"png 2^31-1 x 1", PngDeclaring(pngs[2], 0x7FFFFFFF, 1), kTooBig},
      {"png 1 x 2^31-1", PngDeclaring(pngs[3], 1, 0x7FFFFFFF), kTooBig},
      {"png 2^32-1 square", PngDeclaring(pngs[4], 0xFFFFFFFF, 0xFFFFFFFF), kTooBig},
      {"png 40001x1001", PngDeclaring(pngs[5], 40001, 1001), kTooBig},
      {"png 0x100", PngDeclaring(pngs[0], 0, 100), kInvalid},
      {"png 100x0", PngDeclaring(pngs[1], 100, 0), kInvalid},
      {"png 6000x6000 tiny data", PngDeclaring(pngs[2], 6000, 6000), kInvalid},
      {"jpeg 65535x65535", JpegDeclaring(jpegs[0], 65535, 65535), kTooBig},
      {"jpeg 65535x1000", JpegDeclaring(jpegs[1], 65535, 1000), kTooBig},
      {"orig jpeg 65535x65535", JpegDeclaring(originals[2], 65535, 65535), kTooBig},
      {"jpeg 0x0", JpegDeclaring(jpegs[3], 0, 0), kInvalid},
      {"webp VP8X 2^24 square", WebpVp8xDeclaring(1 << 24, 1 << 24), kTooBig},
      {"webp VP8X 2^24 x 3", WebpVp8xDeclaring(1 << 24, 3), kTooBig},
      {"webp VP8 16383 square", WebpVp8Declaring(webps[0], 16383, 16383), kTooBig},
      {"webp VP8 0x0", WebpVp8Declaring(webps[1], 0, 0), kInvalid},
      {"webp VP8L 16384 square", WebpVp8lDeclaring(webpls[0], 16384, 16384), kTooBig},
      {"bmp 100000 square", BmpDeclaring(bmps[0], 100000, 100000), kTooBig},
      {"bmp height INT32_MIN", BmpDeclaring(bmps[1], 240, INT32_MIN), kTooBig},
      {"bmp width -100000", BmpDeclaring(bmps[2], -100000, 1000), kTooBig},
      {"bmp 0x0", BmpDeclaring(bmps[3], 0, 0), kInvalid},
  };
  for (const Declared& d : declared) {
    for (int k = 0; k < 5; ++k) grpc_image("image.declared-size", d.label, d.bytes, d.expect);
    http_image("image.declared-size", d.label, d.bytes, d.expect, false);
    http_image("image.declared-size", d.label, d.bytes, d.expect, true);
  }

  // 4. Zero-length, junk and other formats.
  for (int k = 0; k < 5; ++k) grpc_image("image.empty-junk", "zero-length", "", kInvalid);
  for (int k = 0; k < 5; ++k) http_image("image.empty-junk", "zero-length", "", kInvalid, k % 2);
  for (const char* junk : {"GIF89a\x01\x00\x01\x00\x00\x00\x00", "II*\x00\x08\x00\x00\x00",
                           "%PDF-1.7\n", "<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>",
                           "\x7f" "ELF\x02\x01\x01", "\xFF\xD8", "\xFF\xD8\xFF", "\x89PNG\r\n\x1a\n",
                           "RIFF\x00\x00\x00\x00WEBP", "BM", "../../etc/passwd"}) {
    grpc_image("image.empty-junk", "junk", junk, kInvalid);
    http_image("image.empty-junk", "junk", junk, kInvalid, false);
  }
  for (int i = 0; i < 20; ++i) {
    std::string junk(1 + rng() % 4096, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    grpc_image("image.empty-junk", "random#" + std::to_string(i), junk, kInvalid);
  }
  // The right magic followed by random bytes.
  for (int i = 0; i < 20; ++i) {
    const char* magics[] = {"\xFF\xD8\xFF\xE0", "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
                            "RIFF\x10\x00\x00\x00WEBPVP8 ", "BM"};
    const size_t magic_len[] = {4, 16, 16, 2};
    std::string bytes(magics[i % 4], magic_len[i % 4]);
    for (int k = 0; k < 200; ++k) bytes += static_cast<char>(rng());
    // A random header may declare any size: refused for its size, or as corrupt.
    grpc_image("image.empty-junk", "magic+random#" + std::to_string(i), bytes,
               {"INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"});
  }

  // 5. Bodies over the limit: 100 MB over gRPC (every image RPC and a text field) and HTTP.
  for (Target t : targets) {
    probes.push_back({"body.oversize", std::string(TargetName(t)) + " 100 MB image", kTooBig,
                      [t] { return SendImageGrpc(t, std::string(kHugeBody, '\xFF')); }});
  }
  probes.push_back({"body.oversize", "AddPhoto image of max+1 bytes", kTooBig, [] {
                      return SendImageGrpc(Target::kAddPhoto,
                                           std::string(kMaxRequestBytes + 1, 'x'));
                    }});
  probes.push_back({"body.oversize", "CreateCase 100 MB display_name", kTooBig, [] {
                      pb::CreateCaseRequest r;
                      r.mutable_case_()->set_kind(pb::MISSING);
                      r.mutable_case_()->set_display_name(std::string(kHugeBody, 'a'));
                      pb::Case resp;
                      return FromGrpc(Call(&Stub::CreateCase, "adm", r, &resp));
                    }});
  for (const char* path : {"/v1/sightings", "/v1/search", "/v1/cases"}) {
    std::string head = std::string("POST ") + path +
                       " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + W->keys["inv"] +
                       "\r\nContent-Type: application/json\r\n";
    probes.push_back({"body.oversize", std::string("HTTP 100 MB Content-Length ") + path,
                      {"413/RESOURCE_EXHAUSTED"}, [head] {
                        return RawHttpHuge(
                            head + "Content-Length: " + std::to_string(kHugeBody) + "\r\n\r\n",
                            kHugeBody, false);
                      }});
    // Chunked and unsized bodies are refused before a byte is read (httplib would buffer them
    // whole: its payload limit applies to Content-Length bodies only).
    probes.push_back({"body.oversize", std::string("HTTP 100 MB chunked ") + path,
                      {"411/INVALID_ARGUMENT"}, [head] {
                        return RawHttpHuge(head + "Transfer-Encoding: chunked\r\n\r\n", kHugeBody,
                                           true);
                      }});
    probes.push_back({"body.oversize", std::string("HTTP 100 MB without Content-Length ") + path,
                      {"411/INVALID_ARGUMENT"},
                      [head] { return RawHttpHuge(head + "\r\n", kHugeBody, false); }});
  }
  probes.push_back({"body.oversize", "HTTP multipart 100 MB image", {"413/RESOURCE_EXHAUSTED"},
                    [] {
                      return SendImageHttp(Target::kSighting, std::string(kHugeBody, '\xFF'),
                                           true);
                    }});

  // 6. Hostile text in every text field, filter and id, over gRPC.
  const std::vector<Text> texts = HostileTexts();
  const std::set<std::string> kOk = {"OK"};
  // Free text that is stored: must succeed and round-trip byte for byte.
  using CaseSetter = void (*)(pb::Case*, const std::string&);
  const std::vector<std::pair<std::string, CaseSetter>> case_fields = {
      {"display_name", [](pb::Case* c, const std::string& v) { c->set_display_name(v); }},
      {"place", [](pb::Case* c, const std::string& v) { c->set_place(v); }},
      {"notes", [](pb::Case* c, const std::string& v) { c->set_notes(v); }},
      {"reporter_contact", [](pb::Case* c, const std::string& v) { c->set_reporter_contact(v); }},
  };
  for (const Text& t : texts) {
    for (const auto& [field, set] : case_fields) {
      probes.push_back({"text." + t.kind, "CreateCase case." + field, kOk, [t, field = field, set = set] {
                          pb::CreateCaseRequest r;
                          r.mutable_case_()->set_kind(pb::MISSING);
                          r.mutable_case_()->set_display_name("Hostile");
                          set(r.mutable_case_(), t.value);
                          pb::Case created;
                          Outcome o = FromGrpc(Call(&Stub::CreateCase, "fam", r, &created));
                          if (o.code != "OK") return o;
                          pb::GetCaseRequest get;
                          get.set_id(created.id());
                          pb::Case got;
                          Outcome g = FromGrpc(Call(&Stub::GetCase, "fam", get, &got));
                          if (g.code != "OK") return Outcome{"GETCASE_" + g.code, g.message};
                          pb::Case want = r.case_();
                          for (const pb::Case* c : {&created, &got}) {
                            if (c->display_name() != want.display_name() ||
                                c->place() != want.place() || c->notes() != want.notes() ||
                                c->reporter_contact() != want.reporter_contact()) {
                              return Outcome{"NOT_ROUND_TRIPPED", field};
                            }
                          }
                          return o;
                        }});
      probes.push_back({"text." + t.kind, "UpdateCase case." + field, kOk, [t, set = set, field = field] {
                          pb::GetCaseRequest get;
                          get.set_id(W->fam_case);
                          pb::UpdateCaseRequest r;
                          Outcome g = FromGrpc(Call(&Stub::GetCase, "fam", get, r.mutable_case_()));
                          if (g.code != "OK") return Outcome{"GETCASE_" + g.code, g.message};
                          set(r.mutable_case_(), t.value);
                          pb::Case updated;
                          Outcome o = FromGrpc(Call(&Stub::UpdateCase, "fam", r, &updated));
                          if (o.code != "OK") return o;
                          pb::Case got;
                          Call(&Stub::GetCase, "fam", get, &got);
                          pb::Case want = r.case_();
                          if (got.display_name() != want.display_name() ||
                              got.place() != want.place() || got.notes() != want.notes() ||
                              got.reporter_contact() != want.reporter_contact()) {
                            return Outcome{"NOT_ROUND_TRIPPED", field};
                          }
                          // Restore the warm-up case for the probes that follow.
                          pb::UpdateCaseRequest restore;
                          *restore.mutable_case_() = got;
                          restore.mutable_case_()->set_display_name("Warm Up");
                          restore.mutable_case_()->set_place("Springfield");
                          restore.mutable_case_()->clear_notes();
                          restore.mutable_case_()->clear_reporter_contact();
                          Call(&Stub::UpdateCase, "fam", restore, &got);
                          return o;
                        }});
    }
    {  // both fields in one sighting: each costs a face-pipeline run
      probes.push_back({"text." + t.kind, "SubmitSighting place+notes", kOk, [t] {
                          pb::SubmitSightingRequest r;
                          r.set_image(W->face_jpeg);
                          r.set_place(t.value);
                          r.set_notes(t.value);
                          pb::SubmitSightingResponse resp;
                          Outcome o = FromGrpc(Call(&Stub::SubmitSighting, "vol", r, &resp));
                          if (o.code != "OK") return o;
                          pb::GetCaseRequest get;
                          get.set_id(resp.case_id());
                          pb::Case got;
                          Outcome g = FromGrpc(Call(&Stub::GetCase, "vol", get, &got));
                          if (g.code != "OK") return Outcome{"GETCASE_" + g.code, g.message};
                          if (got.place() != t.value || got.notes() != t.value) {
                            return Outcome{"NOT_ROUND_TRIPPED", "place/notes"};
                          }
                          return o;
                        }});
    }
    probes.push_back({"text." + t.kind, "AddPhoto source", kOk, [t] {
                        pb::AddPhotoRequest r;
                        r.set_case_id(W->found_case);
                        r.set_image(W->tiny_png);
                        r.set_source(t.value);
                        pb::AddPhotoResponse resp;
                        return FromGrpc(Call(&Stub::AddPhoto, "adm", r, &resp));
                      }});
    probes.push_back({"text." + t.kind, "ReviewLead note", kOk, [t] {
                        pb::ReviewLeadRequest r;
                        r.set_id(W->lead_id);
                        r.set_decision(pb::LEAD_NEEDS_BETTER_PHOTO);
                        r.set_note(t.value);
                        pb::Lead lead;
                        Outcome o = FromGrpc(Call(&Stub::ReviewLead, "inv", r, &lead));
                        if (o.code != "OK") return o;
                        if (lead.reviews().empty() || lead.reviews().rbegin()->note() != t.value) {
                          return Outcome{"NOT_ROUND_TRIPPED", "note"};
                        }
                        return o;
                      }});
    // Filters: text is matched literally (no LIKE wildcards), and never breaks the query.
    probes.push_back({"filter." + t.kind, "ListCases place_contains", kOk, [t] {
                        pb::ListCasesRequest r;
                        r.set_place_contains(t.value);
                        r.set_page_size(1000);
                        pb::ListCasesResponse resp;
                        Outcome o = FromGrpc(Call(&Stub::ListCases, "inv", r, &resp));
                        if (o.code != "OK") return o;
                        std::string needle = t.value;
                        std::transform(needle.begin(), needle.end(), needle.begin(), [](unsigned char ch) { return std::tolower(ch); });
                        // The CreateCase probe above stored a case with exactly this place.
                        bool found_own = false;
                        for (const pb::Case& c : resp.cases()) found_own |= c.place() == t.value;
                        if (!found_own) return Outcome{"FILTER_MISSED_LITERAL_ROW", ""};
                        for (const pb::Case& c : resp.cases()) {
                          std::string place = c.place();
                          std::transform(place.begin(), place.end(), place.begin(), [](unsigned char ch) { return std::tolower(ch); });
                          if (place.find(needle) == std::string::npos) {
                            return Outcome{"FILTER_NOT_LITERAL", "case " + c.id() + " place " + c.place()};
                          }
                        }
                        return o;
                      }});
    probes.push_back({"filter." + t.kind, "ListLeads place_contains", kOk, [t] {
                        pb::ListLeadsRequest r;
                        r.set_place_contains(t.value);
                        pb::ListLeadsResponse resp;
                        Outcome o = FromGrpc(Call(&Stub::ListLeads, "inv", r, &resp));
                        for (const pb::Lead& lead : resp.leads()) {
                          if (!ContainsAsciiCi(lead.a().case_().place(), t.value) &&
                              !ContainsAsciiCi(lead.b().case_().place(), t.value)) {
                            return Outcome{"FILTER_NOT_LITERAL", "lead " + lead.id()};
                          }
                        }
                        return o;
                      }});
    probes.push_back({"filter." + t.kind, "Search filter.place_contains", kOk, [t] {
                        pb::SearchRequest r;
                        r.set_face_id(W->sighting_face);
                        r.mutable_filter()->set_place_contains(t.value);
                        pb::SearchResponse resp;
                        Outcome o = FromGrpc(Call(&Stub::Search, "inv", r, &resp));
                        for (const pb::QueryResult& q : resp.results()) {
                          for (const pb::Candidate& c : q.candidates()) {
                            if (!ContainsAsciiCi(c.case_().place(), t.value)) {
                              return Outcome{"FILTER_NOT_LITERAL", "candidate " + c.case_().id()};
                            }
                          }
                        }
                        return o;
                      }});
    // Ids, dates and page tokens: refused as malformed, never looked up.
    using IdProbe = std::function<grpc::Status(const std::string&)>;
    const std::vector<std::pair<std::string, IdProbe>> ids = {
        {"GetCase id", [](const std::string& v) { pb::GetCaseRequest r; r.set_id(v); pb::Case o; return Call(&Stub::GetCase, "adm", r, &o); }},
        {"DeleteCase id", [](const std::string& v) { pb::DeleteCaseRequest r; r.set_id(v); pb::DeleteCaseResponse o; return Call(&Stub::DeleteCase, "adm", r, &o); }},
        {"ExportCase id", [](const std::string& v) { pb::ExportCaseRequest r; r.set_id(v); pb::ExportCaseResponse o; return Call(&Stub::ExportCase, "adm", r, &o); }},
        {"UpdateCase case.id", [](const std::string& v) { pb::UpdateCaseRequest r; r.mutable_case_()->set_id(v); r.mutable_case_()->set_display_name("x"); pb::Case o; return Call(&Stub::UpdateCase, "adm", r, &o); }},
        {"AddPhoto case_id", [](const std::string& v) { pb::AddPhotoRequest r; r.set_case_id(v); r.set_image(W->tiny_png); pb::AddPhotoResponse o; return Call(&Stub::AddPhoto, "adm", r, &o); }},
        {"GetPhoto photo_id", [](const std::string& v) { pb::GetPhotoRequest r; r.set_photo_id(v); pb::GetPhotoResponse o; return Call(&Stub::GetPhoto, "adm", r, &o); }},
        {"GetFaceCrop face_id", [](const std::string& v) { pb::GetFaceCropRequest r; r.set_face_id(v); pb::GetFaceCropResponse o; return Call(&Stub::GetFaceCrop, "adm", r, &o); }},
        {"Search face_id", [](const std::string& v) { pb::SearchRequest r; r.set_face_id(v); pb::SearchResponse o; return Call(&Stub::Search, "inv", r, &o); }},
        {"Compare a.face_id", [](const std::string& v) { pb::CompareRequest r; r.mutable_a()->set_face_id(v); r.mutable_b()->set_face_id(W->fam_face); pb::CompareResponse o; return Call(&Stub::Compare, "inv", r, &o); }},
        {"GetLead id", [](const std::string& v) { pb::GetLeadRequest r; r.set_id(v); pb::Lead o; return Call(&Stub::GetLead, "inv", r, &o); }},
        {"ReviewLead id", [](const std::string& v) { pb::ReviewLeadRequest r; r.set_id(v); r.set_decision(pb::LEAD_REJECTED); pb::Lead o; return Call(&Stub::ReviewLead, "inv", r, &o); }},
        {"CreateCase case.event_date", [](const std::string& v) { pb::CreateCaseRequest r; r.mutable_case_()->set_kind(pb::MISSING); r.mutable_case_()->set_display_name("x"); r.mutable_case_()->set_event_date(v); pb::Case o; return Call(&Stub::CreateCase, "adm", r, &o); }},
        {"CreateCase case.birth_date", [](const std::string& v) { pb::CreateCaseRequest r; r.mutable_case_()->set_kind(pb::MISSING); r.mutable_case_()->set_display_name("x"); r.mutable_case_()->set_birth_date(v); pb::Case o; return Call(&Stub::CreateCase, "adm", r, &o); }},
        {"AddPhoto taken_on", [](const std::string& v) { pb::AddPhotoRequest r; r.set_case_id(W->found_case); r.set_image(W->tiny_png); r.set_taken_on(v); pb::AddPhotoResponse o; return Call(&Stub::AddPhoto, "adm", r, &o); }},
        {"SubmitSighting seen_on", [](const std::string& v) { pb::SubmitSightingRequest r; r.set_image(W->tiny_png); r.set_seen_on(v); pb::SubmitSightingResponse o; return Call(&Stub::SubmitSighting, "vol", r, &o); }},
        {"ListCases event_from", [](const std::string& v) { pb::ListCasesRequest r; r.set_event_from(v); pb::ListCasesResponse o; return Call(&Stub::ListCases, "inv", r, &o); }},
        {"ListCases page_token", [](const std::string& v) { pb::ListCasesRequest r; r.set_page_token(v); pb::ListCasesResponse o; return Call(&Stub::ListCases, "inv", r, &o); }},
        {"Search filter.date_from", [](const std::string& v) { pb::SearchRequest r; r.set_face_id(W->fam_face); r.mutable_filter()->set_date_from(v); pb::SearchResponse o; return Call(&Stub::Search, "inv", r, &o); }},
        {"Search query_date", [](const std::string& v) { pb::SearchRequest r; r.set_face_id(W->fam_face); r.set_query_date(v); pb::SearchResponse o; return Call(&Stub::Search, "inv", r, &o); }},
        {"ListLeads event_to", [](const std::string& v) { pb::ListLeadsRequest r; r.set_event_to(v); pb::ListLeadsResponse o; return Call(&Stub::ListLeads, "inv", r, &o); }},
        {"ListLeads page_token", [](const std::string& v) { pb::ListLeadsRequest r; r.set_page_token(v); pb::ListLeadsResponse o; return Call(&Stub::ListLeads, "inv", r, &o); }},
    };
    for (const auto& [label, call] : ids) {
      probes.push_back({"id-date." + t.kind, label, kInvalid,
                        [call = call, v = t.value] { return FromGrpc(call(v)); }});
    }
  }
  // SQL in the API key itself.
  for (const Text& t : texts) {
    if (t.kind != "sql") continue;
    probes.push_back({"auth.sql", "GetStats with key " + t.value, {"UNAUTHENTICATED"}, [t] {
                        pb::GetStatsResponse resp;
                        return FromGrpc(CallRpc(*W->stub, &Stub::GetStats, t.value,
                                                pb::GetStatsRequest(), &resp,
                                                std::chrono::seconds(30)));
                      }});
  }
  // Text over its documented limit: INVALID_ARGUMENT naming the field. At the limit: stored.
  struct Limit {
    std::string field;
    size_t max;
  };
  for (const Limit& l : std::vector<Limit>{{"display_name", 200}, {"place", 500}, {"notes", 10000},
                                           {"reporter_contact", 500}}) {
    for (size_t size : {l.max, l.max + 1}) {
      // Multi-byte text: 'e' + U+00E9 pairs, cut to exactly `size` bytes on a char boundary.
      std::string v;
      while (v.size() + 3 <= size) v += "e\xC3\xA9";
      while (v.size() < size) v += "x";
      CaseSetter set = nullptr;
      for (const auto& cf : case_fields)
        if (cf.first == l.field) set = cf.second;
      probes.push_back({"text.limits", "CreateCase case." + l.field + " " + std::to_string(size) + " bytes",
                        size > l.max ? kInvalid : kOk, [set, v, field = l.field] {
                          pb::CreateCaseRequest r;
                          r.mutable_case_()->set_kind(pb::MISSING);
                          r.mutable_case_()->set_display_name("Limit");
                          set(r.mutable_case_(), v);
                          pb::Case created;
                          Outcome o = FromGrpc(Call(&Stub::CreateCase, "fam", r, &created));
                          if (o.code == "INVALID_ARGUMENT" && o.message.find(field) == std::string::npos) {
                            return Outcome{"MESSAGE_LACKS_FIELD", o.message};
                          }
                          return o;
                        }});
    }
  }
  for (size_t size : {size_t{500}, size_t{501}}) {
    probes.push_back({"text.limits", "ListCases place_contains " + std::to_string(size) + " bytes",
                      size > 500 ? kInvalid : kOk, [size] {
                        pb::ListCasesRequest r;
                        r.set_place_contains(std::string(size, 'p'));
                        pb::ListCasesResponse resp;
                        return FromGrpc(Call(&Stub::ListCases, "inv", r, &resp));
                      }});
    probes.push_back({"text.limits", "SubmitSighting place " + std::to_string(size) + " bytes",
                      size > 500 ? kInvalid : kOk, [size] {
                        pb::SubmitSightingRequest r;
                        r.set_image(W->face_jpeg);
                        r.set_place(std::string(size, 'p'));
                        pb::SubmitSightingResponse resp;
                        return FromGrpc(Call(&Stub::SubmitSighting, "vol", r, &resp));
                      }});
  }
  probes.push_back({"text.limits", "ReviewLead note 10001 bytes", kInvalid, [] {
                      pb::ReviewLeadRequest r;
                      r.set_id(W->lead_id);
                      r.set_decision(pb::LEAD_REJECTED);
                      r.set_note(std::string(10001, 'n'));
                      pb::Lead lead;
                      return FromGrpc(Call(&Stub::ReviewLead, "inv", r, &lead));
                    }});
  probes.push_back({"text.limits", "AddPhoto source 101 bytes", kInvalid, [] {
                      pb::AddPhotoRequest r;
                      r.set_case_id(W->found_case);
                      r.set_image(W->tiny_png);
                      r.set_source(std::string(101, 's'));
                      pb::AddPhotoResponse resp;
                      return FromGrpc(Call(&Stub::AddPhoto, "adm", r, &resp));
                    }});
  // Bytes that are not UTF-8 in a proto3 string field: protobuf refuses to parse the request
  // before any server code runs, and gRPC 1.51's callback API answers every request it cannot
  // parse with UNIMPLEMENTED and an empty message (server_callback_handlers.h). The server's
  // ParseErrorInterceptor turns that into INVALID_ARGUMENT with a message for its own methods
  // (server/internal/parse_error_interceptor.h); the gateway checks UTF-8 itself (400).
  for (const std::string& bad : {std::string("\xFF\xFE"), std::string("caf\xE9"),
                                 std::string("\xC0\xAF../etc"), std::string("\xED\xA0\x80")}) {
    probes.push_back({"text.invalid-utf8", "CreateCase display_name", kInvalid, [bad] {
                        pb::CreateCaseRequest r;
                        r.mutable_case_()->set_kind(pb::MISSING);
                        r.mutable_case_()->set_display_name(bad);
                        pb::Case resp;
                        return FromGrpc(Call(&Stub::CreateCase, "fam", r, &resp));
                      }});
    probes.push_back({"text.invalid-utf8", "GetCase id", kInvalid, [bad] {
                        pb::GetCaseRequest r;
                        r.set_id(bad);
                        pb::Case resp;
                        return FromGrpc(Call(&Stub::GetCase, "fam", r, &resp));
                      }});
  }

  // 7. The JSON gateway: wrong field types, broken JSON, wrong media types.
  const std::string case_path = "/v1/cases/" + W->fam_case;
  struct JsonProbe {
    std::string method, path, who, body, content_type;
    std::set<std::string> expect;
  };
  std::vector<JsonProbe> json_probes;
  const std::set<std::string> k400 = {"400/INVALID_ARGUMENT"};
  for (const char* body : {
           R"({"kind":"MISSING","displayName":123})", R"({"kind":"MISSING","displayName":["a"]})",
           R"({"kind":"MISSING","displayName":{"a":1}})", R"({"kind":"MISSING","displayName":true})",
           R"({"kind":5.5,"displayName":"a"})", R"({"kind":"ROBOT","displayName":"a"})",
           R"({"kind":99,"displayName":"a"})", R"({"kind":["MISSING"],"displayName":"a"})",
           R"({"kind":"MISSING","displayName":"a","birthYearMin":"abc"})",
           R"({"kind":"MISSING","displayName":"a","birthYearMin":1e20})",
           R"({"kind":"MISSING","displayName":"a","birthYearMin":1.5})",
           R"({"kind":"MISSING","displayName":"a","birthYearMin":-5})",
           R"({"kind":"MISSING","displayName":"a","sex":true})",
           R"({"kind":"MISSING","displayName":"a","sex":"ROBOT"})",
           R"({"kind":"MISSING","displayName":"a","status":[]})",
           R"({"kind":"MISSING","displayName":"a","photoCount":"many"})",
           R"({"kind":"MISSING","displayName":null})",
           R"({"kind":"MISSING","displayName":"a","unknownField":1})",
           R"({"kind":"MISSING","displayName":"a","eventDate":20240101})",
           R"({"kind":"MISSING","displayName":"a","eventDate":"2024-02-30"})",
           R"({"kind":"MISSING","displayName":"a","birthDate":"'; DROP TABLE cases;--"})",
           R"({"kind":"MISSING","displayName":"   "})",
           R"({"kind":"MISSING","displayName":"a","place":{"$gt":""}})",
           R"([])", R"("MISSING")", R"(123)", R"(null)", R"(true)", "",
           R"({)", R"({"kind":)", R"({"kind":"MISSING")", R"(}{)", R"({'kind':'MISSING'})",
           R"({"kind":"MISSING",})", R"({"kind":"MISSING"} trailing)", "\xFF\xFE{}",
           R"({"kind":"MISSING","displayName":"\ud800"})",
           R"({"kind":"MISSING","displayName":"a","birthYearMin":1e999999})",
           "{\"kind\":\"MISSING\",\"displayName\":\"caf\xE9\"}",
       }) {
    json_probes.push_back({"POST", "/v1/cases", "fam", body, "application/json", k400});
    json_probes.push_back({"PUT", case_path, "fam", body, "application/json", k400});
  }
  // protobuf's JSON parser takes a raw control character inside a string (RFC 8259 would
  // not): the text is then stored as sent, like the escaped control characters below.
  json_probes.push_back({"POST", "/v1/cases", "fam", "{\"kind\":\"MISSING\",\"displayName\":\"a\x01\"}",
                         "application/json", {"200/OK"}});
  // Deep nesting: a recursion bomb for the JSON parser.
  for (int depth : {1000, 100000}) {
    json_probes.push_back({"POST", "/v1/cases", "fam", std::string(depth, '[') + std::string(depth, ']'),
                           "application/json", k400});
    std::string nested;
    for (int i = 0; i < depth; ++i) nested += "{\"filter\":";
    nested += "{}";
    nested += std::string(depth, '}');
    json_probes.push_back({"POST", "/v1/search", "inv", nested, "application/json", k400});
  }
  const std::string b64 = Base64(jpegs[0]);
  for (const std::string& path : {std::string("/v1/sightings"), std::string("/v1/search"),
                                  "/v1/cases/" + W->found_case + "/photos"}) {
    std::string who = path == "/v1/sightings" ? "vol" : path == "/v1/search" ? "inv" : "adm";
    for (const std::string& body : {
             std::string(R"({"image":123})"), std::string(R"({"image":["AAAA"]})"),
             std::string(R"({"image":{"a":1}})"), std::string(R"({"image":"!!!not base64!!!"})"),
             std::string(R"({"image":""})"), std::string("{}"), std::string(""),
             R"({"image":")" + b64 + R"(","topK":"ten"})",
             R"({"image":")" + b64 + R"(","topK":1.5})",
             R"({"image":")" + b64 + R"(","topK":1e12})",
             R"({"image":")" + b64 + R"(","topK":-1})",
             R"({"image":")" + b64 + R"(","estimatedAge":"about 8"})",
             R"({"image":")" + b64 + R"(","estimatedAge":{"known":true,"minYears":"x"}})",
             R"({"image":")" + b64 + R"(","age":{"known":true,"minYears":9,"maxYears":3}})",
             R"({"image":")" + b64 + R"(","kinds":["ROBOT"]})",
             R"({"image":")" + b64 + R"(","filter":"x"})",
             R"({"image":")" + b64 + R"(","seenOn":20240101})",
             R"({"image":")" + b64 + R"(","place":false})",
             R"({"image":")" + b64.substr(0, b64.size() / 2) + R"("})",
         }) {
      json_probes.push_back({"POST", path, who, body, "application/json", k400});
    }
    // Both members of the query oneof: refused by protobuf's JSON parser ("oneof field 'query'
    // is already set"); the other routes have no faceId field.
    json_probes.push_back({"POST", path, who, R"({"image":")" + b64 + R"(","faceId":")" + W->fam_face + R"("})",
                           "application/json", k400});
    // A bare value for a repeated field: protobuf's JSON parser takes "MISSING" as ["MISSING"]
    // (Search has `kinds`; the other routes have no such field).
    json_probes.push_back({"POST", path, who, R"({"image":")" + b64 + R"(","kinds":"MISSING"})",
                           "application/json", {path == "/v1/search" ? "200/OK" : "400/INVALID_ARGUMENT"}});
  }
  for (const char* body : {R"({"a":[]})", R"({"a":{"image":"AAAA","faceId":"1"}})",
                           R"({"a":{"faceId":1},"b":{"faceId":"1"}})", R"({"a":"x","b":"y"})",
                           R"({"a":{"faceId":"1"}})", R"({})", R"({"a":{"faceId":"1"},"b":{"faceId":"'; DROP TABLE faces;--"}})"}) {
    json_probes.push_back({"POST", "/v1/compare", "inv", body, "application/json", k400});
  }
  const std::string review = "/v1/leads/" + W->lead_id + ":review";
  for (const char* body : {R"({"decision":"MAYBE"})", R"({"decision":1.5})", R"({"decision":"LEAD_OPEN"})",
                           R"({})", R"({"decision":"LEAD_REJECTED","note":42})",
                           R"({"decision":"LEAD_REJECTED","note":["x"]})", R"({"decision":["LEAD_REJECTED"]})"}) {
    json_probes.push_back({"POST", review, "inv", body, "application/json", k400});
  }
  json_probes.push_back({"PUT", case_path, "fam", R"({"id":"999999","displayName":"x"})", "application/json", k400});
  json_probes.push_back({"PUT", case_path, "fam", R"({"kind":"FOUND","displayName":"x"})", "application/json", k400});
  json_probes.push_back({"PATCH", case_path, "fam", R"({"kind":"SIGHTING"})", "application/json", k400});
  for (const char* type : {"text/plain", "application/xml", "application/x-www-form-urlencoded",
                           "image/jpeg", "application/json-patch+json"}) {
    json_probes.push_back({"POST", "/v1/cases", "fam", R"({"kind":"MISSING","displayName":"a"})",
                           type, {"415/INVALID_ARGUMENT"}});
  }
  for (const JsonProbe& j : json_probes) {
    std::string label = j.method + " " + j.path + " " + j.body.substr(0, 60);
    probes.push_back({"http.json", label, j.expect, [j] {
                        auto cli = Http();
                        httplib::Result r =
                            j.method == "POST"  ? cli->Post(j.path.c_str(), As(j.who), j.body, j.content_type.c_str())
                            : j.method == "PUT" ? cli->Put(j.path.c_str(), As(j.who), j.body, j.content_type.c_str())
                                                : cli->Patch(j.path.c_str(), As(j.who), j.body, j.content_type.c_str());
                        return FromHttp(r);
                      }});
  }
  // Form fields: unknown and path-like names, repeated fields that need JSON.
  for (const std::string& name : {std::string("../../etc/passwd"), std::string("/tmp/x"), std::string("image/../../x"),
                                  std::string("kinds.x"), std::string("filter"), std::string("topK")}) {
    probes.push_back({"http.form", "multipart field " + name, k400, [name, img = jpegs[1]] {
                        httplib::MultipartFormDataItems items = {{"image", img, "a.jpg", "image/jpeg"},
                                                                 {name, "x", "", ""}};
                        return FromHttp(Http()->Post("/v1/search", As("inv"), items));
                      }});
  }
  // Query parameters of the wrong type or unknown.
  for (const std::string& q : {std::string("pageSize=abc"), std::string("pageSize=1e3"), std::string("pageSize=-1"),
                               std::string("pageSize=99999999999"), std::string("kind=ROBOT"), std::string("status=1.5"),
                               std::string("eventFrom=yesterday"), std::string("nope=1"), std::string("pageToken=abc"),
                               std::string("pageToken=-1"), std::string("kind=MISSING&kind=FOUND&kind=%00")}) {
    for (const char* route : {"/v1/cases", "/v1/leads"}) {
      probes.push_back({"http.query", std::string(route) + "?" + q, k400, [route, q] {
                          return FromHttp(Http()->Get((std::string(route) + "?" + q).c_str(), As("inv")));
                        }});
    }
  }
  probes.push_back({"http.query", "/v1/faces/ID/crop?size=abc", k400, [] {
                      return FromHttp(Http()->Get(("/v1/faces/" + W->fam_face + "/crop?size=abc").c_str(), As("inv")));
                    }});
  probes.push_back({"http.query", "/v1/faces/ID/crop?size=100000", k400, [] {
                      return FromHttp(Http()->Get(("/v1/faces/" + W->fam_face + "/crop?size=100000").c_str(), As("inv")));
                    }});

  // 8. Hostile text over HTTP: JSON bodies (round trip), query filters, path ids, traversal.
  for (const Text& t : texts) {
    probes.push_back({"http.text." + t.kind, "POST /v1/cases displayName+place", {"200/OK"}, [t] {
                        Json body = {{"kind", "MISSING"}, {"displayName", "H " + t.value},
                                     {"place", t.value}, {"notes", t.value}};
                        Json got;
                        Outcome o = FromHttp(Http()->Post("/v1/cases", As("fam"), body.dump(), "application/json"), &got);
                        if (o.code != "200/OK") return o;
                        if (got.value("displayName", "") != "H " + t.value || got.value("place", "") != t.value ||
                            got.value("notes", "") != t.value) {
                          return Outcome{"NOT_ROUND_TRIPPED", got.dump().substr(0, 200)};
                        }
                        auto again = Http()->Get(("/v1/cases/" + got.value("id", "")).c_str(), As("fam"));
                        Json back;
                        Outcome g = FromHttp(again, &back);
                        if (g.code != "200/OK" || back.value("place", "") != t.value) {
                          return Outcome{"NOT_ROUND_TRIPPED", "GET " + g.code};
                        }
                        return o;
                      }});
    probes.push_back({"http.text." + t.kind, "PATCH /v1/cases/ID notes", {"200/OK"}, [t] {
                        Json got;
                        Outcome o = FromHttp(Http()->Patch(("/v1/cases/" + W->fam_case).c_str(), As("fam"),
                                                           Json{{"notes", t.value}}.dump(), "application/json"),
                                             &got);
                        if (o.code == "200/OK" && got.value("notes", "") != t.value) {
                          return Outcome{"NOT_ROUND_TRIPPED", "notes"};
                        }
                        return o;
                      }});
    probes.push_back({"http.text." + t.kind, "POST /v1/leads/ID:review note", {"200/OK"}, [t] {
                        Json got;
                        Outcome o = FromHttp(Http()->Post(("/v1/leads/" + W->lead_id + ":review").c_str(), As("inv"),
                                                          Json{{"decision", "LEAD_NEEDS_BETTER_PHOTO"}, {"note", t.value}}.dump(),
                                                          "application/json"),
                                             &got);
                        if (o.code == "200/OK" &&
                            (!got.contains("reviews") || got["reviews"].empty() || got["reviews"].back().value("note", "") != t.value)) {
                          return Outcome{"NOT_ROUND_TRIPPED", "note"};
                        }
                        return o;
                      }});
    for (const char* route : {"/v1/cases", "/v1/leads"}) {
      probes.push_back({"http.text." + t.kind, std::string("GET ") + route + "?placeContains", {"200/OK"}, [t, route] {
                          httplib::Params params = {{"placeContains", t.value}, {"pageSize", "1000"}};
                          Json got;
                          Outcome o = FromHttp(Http()->Get(route, params, As("inv")), &got);
                          if (o.code != "200/OK" || std::string(route) != "/v1/cases") return o;
                          std::string needle = t.value;
                          std::transform(needle.begin(), needle.end(), needle.begin(), [](unsigned char ch) { return std::tolower(ch); });
                          for (const Json& c : got.value("cases", Json::array())) {
                            std::string place = c.value("place", "");
                            std::transform(place.begin(), place.end(), place.begin(), [](unsigned char ch) { return std::tolower(ch); });
                            if (place.find(needle) == std::string::npos) return Outcome{"FILTER_NOT_LITERAL", place};
                          }
                          return o;
                        }});
    }
    // The text as a path id: malformed (400), or, when it holds '/' or ':', no route (404).
    bool splits = t.value.find('/') != std::string::npos || t.value.find(':') != std::string::npos;
    const std::string id_expect = splits ? "404/NOT_FOUND" : "400/INVALID_ARGUMENT";
    for (const char* prefix : {"/v1/cases/", "/v1/photos/", "/v1/leads/"}) {
      probes.push_back({"http.path-id." + t.kind, std::string("GET ") + prefix + "<text>", {id_expect}, [t, prefix] {
                          return FromHttp(Http()->Get((prefix + PercentEncode(t.value)).c_str(), As("adm")));
                        }});
    }
    probes.push_back({"http.path-id." + t.kind, "DELETE /v1/cases/<text>", {id_expect}, [t] {
                        return FromHttp(Http()->Delete(("/v1/cases/" + PercentEncode(t.value)).c_str(), As("adm")));
                      }});
    probes.push_back({"http.path-id." + t.kind, "GET /v1/faces/<text>/crop", {id_expect}, [t] {
                        return FromHttp(Http()->Get(("/v1/faces/" + PercentEncode(t.value) + "/crop").c_str(), As("adm")));
                      }});
  }
  // Bytes that are not UTF-8 in a path id, echoed in the error: the body must stay JSON.
  for (const std::string& path : {std::string("/v1/cases/%FF%FE"), std::string("/v1/cases/caf%E9"),
                                  "/v1/photos/" + std::string(39, '9') + "%C3%A9%C3%A9",
                                  std::string("/v1/leads/%C0%AF"), std::string("/v1/nothing/%FF%FE")}) {
    bool no_route = path.rfind("/v1/nothing", 0) == 0;
    probes.push_back({"http.path-id.invalid-utf8", "GET " + path,
                      {no_route ? "404/NOT_FOUND" : "400/INVALID_ARGUMENT"},
                      [path] { return FromHttp(Http()->Get(path.c_str(), As("adm"))); }});
  }
  // Traversal out of the static web root: never a file from outside it.
  for (const char* path : {"/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                           "/..%2f..%2f..%2f..%2fetc%2fpasswd", "/%252e%252e/etc/passwd",
                           "/....//....//etc/passwd", "//etc/passwd", "/v1/../../../etc/passwd",
                           "/index.html%00.png", "/.%2e/.%2e/etc/passwd", "/\\..\\..\\etc\\passwd"}) {
    probes.push_back({"http.traversal", std::string("GET ") + path, {"404/NOT_FOUND", "400/INVALID_ARGUMENT"}, [path] {
                        auto r = Http()->Get(path);
                        if (r && r->body.find("root:") != std::string::npos) return Outcome{"LEAKED_FILE", path};
                        return FromHttp(r);
                      }});
  }
  return probes;
}

TEST_F(HostileInputTest, CorpusGetsSpecificCodesAndTheServerStaysHealthy) {
  ASSERT_NO_FATAL_FAILURE(WarmUp());
  const std::set<std::string> cwd_before = Tree(W->cwd), tmp_before = Tree(W->tmp);
  const std::set<std::string> root_before = Tree(W->root);
  const int64_t rss_baseline = VmRssKb(W->server->pid());
  ASSERT_GT(rss_baseline, 0);

  std::vector<Probe> probes = BuildCorpus();
  ASSERT_GE(probes.size(), 1000u);

  // category -> code -> count
  std::map<std::string, std::map<std::string, int>> table;
  std::map<std::string, int64_t> rss_growth;  // sum of RSS increases during a category's probes
  int64_t rss_peak = rss_baseline;
  const auto start = std::chrono::steady_clock::now();
  int failures = 0;
  for (size_t i = 0; i < probes.size(); ++i) {
    const Probe& p = probes[i];
    const int64_t rss_before = VmRssKb(W->server->pid());
    Outcome o = p.run();
    rss_growth[p.category] += std::max<int64_t>(0, VmRssKb(W->server->pid()) - rss_before);
    ++table[p.category][o.code];
    bool ok = p.expect.count(o.code) > 0;
    // An error names what to fix: a message, short, without the request's bulk.
    bool clear = o.code == "OK" || o.code == "200/OK" || p.category == "text.invalid-utf8" ||
                 (!o.message.empty() && o.message.size() < 2000);
    if (!ok || !clear) {
      if (++failures <= 300) {
        ADD_FAILURE() << "#" << i << " [" << p.category << "] " << p.label << "\n  got " << o.code
                      << ": " << o.message.substr(0, 300) << "\n  expected one of "
                      << ::testing::PrintToString(p.expect);
      }
    }
    if (i % 50 == 0) {
      rss_peak = std::max(rss_peak, VmRssKb(W->server->pid()));
      ASSERT_TRUE(W->server->running()) << "the server died at probe #" << i << " " << p.label << "\n"
                                 << ReadWholeFile(W->log).substr(0, 4000);
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(failures, 0);

  // The summary table.
  std::printf("\n%-28s %6s %9s  codes\n", "category", "count", "RSS+ kB");
  size_t total = 0;
  for (const auto& [category, codes] : table) {
    int n = 0;
    std::string seen;
    for (const auto& [code, count] : codes) {
      n += count;
      seen += code + "=" + std::to_string(count) + " ";
    }
    total += n;
    std::printf("%-28s %6d %9lld  %s\n", category.c_str(), n,
                static_cast<long long>(rss_growth[category]), seen.c_str());
  }
  std::printf("%-28s %6zu  in %.1f s\n", "total", total, seconds);
  EXPECT_GE(total, 1000u);

  // Still healthy: SERVING, a normal request works, the process is alive.
  ASSERT_TRUE(W->server->running()) << ReadWholeFile(W->log).substr(0, 4000);
  EXPECT_TRUE(HealthServing());
  {
    pb::SearchRequest search;
    search.set_face_id(W->sighting_face);
    pb::SearchResponse found;
    grpc::Status s = Call(&Stub::Search, "inv", search, &found);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(found.results_size(), 1);
    ASSERT_GE(found.results(0).candidates_size(), 1);
    EXPECT_EQ(found.results(0).candidates(0).case_().id(), W->fam_case);
    auto r = Http()->Get("/v1/stats", As("vol"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }

  // Memory back near the baseline once the corpus is over.
  const int64_t rss_after = SettledRssKb(W->server->pid(), rss_baseline + kRssSlackKb);
  const int64_t bound = rss_baseline + std::max<int64_t>(kRssSlackKb, rss_baseline * kRssSlackFraction);
  std::printf("RSS kB: baseline %lld, peak sampled %lld, after %lld, bound %lld\n",
              static_cast<long long>(rss_baseline), static_cast<long long>(rss_peak),
              static_cast<long long>(rss_after), static_cast<long long>(bound));
  if (kRssMeaningful) {
    EXPECT_LE(rss_after, bound);
  }
  // Three more passes of the oversize bodies: refused bodies must not add up.
  std::string repeats;
  int64_t rss_repeat = 0;
  for (int pass = 0; pass < kOversizeRepeats; ++pass) {
    for (const Probe& p : probes) {
      if (p.category != "body.oversize") continue;
      Outcome o = p.run();
      EXPECT_TRUE(p.expect.count(o.code)) << "pass " << pass + 2 << ": " << p.label << " got " << o.code;
    }
    rss_repeat = SettledRssKb(W->server->pid(), rss_baseline + kRssPlateauKb);
    repeats += " " + std::to_string(rss_repeat);
  }
  std::printf("RSS kB after each further pass of the oversize bodies:%s (allowed %lld)\n",
              repeats.c_str(), static_cast<long long>(rss_baseline + kRssPlateauKb));
  if (kRssMeaningful) {
    EXPECT_LE(rss_repeat, rss_baseline + kRssPlateauKb);
  } else {
    std::printf("RSS bounds not asserted: AddressSanitizer build (quarantine)\n");
  }

  // Nothing written outside the data directory: the sentinel cwd and TMPDIR are unchanged,
  // the test root holds only what it held (plus the growing data dir), no path-like text
  // became a file anywhere.
  EXPECT_EQ(Tree(W->cwd), cwd_before);
  EXPECT_EQ(Tree(W->tmp), tmp_before);
  for (const std::string& entry : Tree(W->root)) {
    if (entry.rfind("data/", 0) == 0) continue;
    EXPECT_TRUE(root_before.count(entry)) << "new file outside the data dir: " << entry;
  }
  EXPECT_FALSE(fs::exists("/tmp/homeward_hostile_" + std::to_string(getpid()) + "_pwned"));
  EXPECT_FALSE(fs::exists("/tmp/hostile_upload_" + std::to_string(getpid()) + ".jpg"));
  // The data dir: the catalog, its lock, photos named by their SHA-256, index snapshots.
  const std::regex layout(
      "catalog\\.db(-wal|-shm|-journal)?|LOCK|photos/|photos/[0-9a-f]{2}/|"
      "photos/[0-9a-f]{2}/[0-9a-f]{2}/|photos/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}|index/|"
      "index/(missing|found|sighting)\\.snap");
  for (const std::string& entry : Tree(W->data)) {
    EXPECT_TRUE(std::regex_match(entry, layout)) << "unexpected entry in the data dir: " << entry;
  }
  // No user text in the log (names and notes are never logged).
  const std::string log = ReadWholeFile(W->log);
  for (const char* secret : {"DROP TABLE", "etc/passwd", "Robert'", "\xE6\x9D\x8E"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "the log holds user text: " << secret;
  }

  // SIGTERM: a clean exit; then the catalog still has its tables and the SQL text verbatim.
  W->stub.reset();
  W->channel.reset();
  const int status = W->server->Stop();  // exited, with code 0
  EXPECT_EQ(status, 0) << "status " << status;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((W->data / "catalog.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  auto count = [&](const std::string& sql, const std::string& bind) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    if (!bind.empty()) sqlite3_bind_text(st, 1, bind.data(), static_cast<int>(bind.size()), SQLITE_TRANSIENT);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
  };
  for (const char* table_name : {"cases", "photos", "faces", "audit", "leads"}) {
    EXPECT_EQ(count("SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1", table_name), 1)
        << table_name;
  }
  EXPECT_GE(count("SELECT count(*) FROM cases WHERE display_name = ?1", "'; DROP TABLE cases;--"), 1);
  EXPECT_GE(count("SELECT count(*) FROM cases WHERE place = ?1", "Robert'); DROP TABLE photos; --"), 1);
  EXPECT_GE(count("SELECT count(*) FROM cases WHERE notes = ?1", std::string("a\0b", 3)), 1);
  EXPECT_GE(count("SELECT count(*) FROM audit", ""), 1000);
  sqlite3_close(db);
}

}  // namespace
}  // namespace homeward
