// End-to-end tests of `mesalab probe`: a tiny training run, then the probes of its checkpoint
// (JSON on stdout, probes.csv and probes.json in the run directory), and the one-line errors
// (exit 2) for bad input. Every test works in a fresh temporary directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_util.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using testing::read_all;
using testing::Result;

int count_lines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

class ProbeCliTest : public testing::CliFixture {
 protected:
  ProbeCliTest() : CliFixture("mesalab_probe_cli_") {}

  // 20 steps of 16 sequences of length 10 into root_/runs/p.
  fs::path train_tiny() const {
    const Result r = mesalab(
        "train --set train.steps=20 --set train.batch_size=16 --set data.seq_len=10 "
        "--set train.test_batches=1 --set train.test_batch_size=16 --set train.runs_dir=runs "
        "--set name=p --quiet --json");
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    return root_ / "runs" / "p";
  }
};

// Bad input: exit 2, nothing on stdout, one line on stderr naming `needle`.
void expect_bad_input(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err.substr(r.err.find_first_not_of('\n'))), 1) << r.err;
}

TEST_F(ProbeCliTest, ProbesATrainedRunAndWritesCsvAndJson) {
  const fs::path run = train_tiny();
  const Result r = mesalab("probe runs/p --batch 32 --target all --json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const json j = json::parse(r.out);
  constexpr int kT = 10, kL = 2;
  EXPECT_EQ(j["seq_len"], kT);
  EXPECT_EQ(j["layers"], kL);
  EXPECT_EQ(j["batch"], 32);
  EXPECT_EQ(j["step"], 20);
  for (const char* target : {"current", "next", "inverse"}) {
    const json& loss = j["probes"][target]["loss"];
    ASSERT_EQ(loss.size(), size_t(kT)) << target;
    for (const json& row : loss) {
      ASSERT_EQ(row.size(), size_t(kL + 1)) << target;
      for (const json& v : row) EXPECT_TRUE(v.is_number() && v.get<double>() >= 0.0) << target;
    }
    EXPECT_EQ(j["probes"][target]["r2"].size(), size_t(kT)) << target;
    EXPECT_EQ(j["probes"][target]["kept"][0], 32) << target;
  }
  EXPECT_EQ(j["control"]["loss"].size(), size_t(kT));
  // The files: CSV header plus 3 targets x (L+1) layers x T steps and T control rows.
  const std::string csv = read_all(run / "probes.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "target,layer,t,loss,r2");
  EXPECT_EQ(count_lines(csv), 1 + 3 * (kL + 1) * kT + kT);
  EXPECT_EQ(json::parse(read_all(run / "probes.json"))["probes"], j["probes"]);

  // The table form, one target.
  const Result table = mesalab("probe runs/p --batch 48 --target next --seed 3");
  ASSERT_EQ(table.code, 0) << table.out << table.err;
  EXPECT_NE(table.out.find("next"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("inverse"), std::string::npos) << table.out;
  EXPECT_EQ(count_lines(read_all(run / "probes.csv")), 1 + (kL + 1) * kT);

  // Held out: fitted on 16 sequences (fewer than the token rank 20, so in-sample interpolates)
  // and scored on another seed's 16.
  const Result in = mesalab("probe runs/p --batch 16 --target all --json");
  const Result out = mesalab("probe runs/p --batch 16 --target all --held-out-seed 9 --json");
  ASSERT_EQ(out.code, 0) << out.out << out.err;
  const json ji = json::parse(in.out), jo = json::parse(out.out);
  EXPECT_EQ(jo["held_out_seed"], 9);
  EXPECT_TRUE(ji["held_out_seed"].is_null());
  EXPECT_LT(ji["probes"]["next"]["loss"][5][0].get<double>(), 1e-6);
  EXPECT_GT(jo["probes"]["next"]["loss"][5][0].get<double>(), 1e-3);
}

TEST_F(ProbeCliTest, BadInputExitsTwoWithOneLine) {
  train_tiny();
  expect_bad_input(mesalab("probe runs/p --target bogus"), "bogus");
  expect_bad_input(mesalab("probe runs/p --lambda 0"), "lambda");
  expect_bad_input(mesalab("probe runs/p --batch 0"), "batch");
  expect_bad_input(mesalab("probe runs/nowhere"), "runs/nowhere");
  expect_bad_input(mesalab("probe runs/p --checkpoint runs/p/none.safetensors"), "none");
}

}  // namespace
}  // namespace mesalab
