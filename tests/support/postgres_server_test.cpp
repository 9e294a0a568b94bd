#include "postgres_server.hpp"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace samokoder::testing {
namespace {

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

Connection connect(const std::string& url) {
  Connection conn(PQconnectdb(url.c_str()), &PQfinish);
  EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  return conn;
}

// Runs `sql` and returns the first column of the first row, or nullopt (with a test failure) on error.
std::optional<std::string> query_value(PGconn* conn, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn, sql.c_str()), &PQclear);
  const auto status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK) return std::string();
  if (status != PGRES_TUPLES_OK || PQntuples(result.get()) < 1) {
    ADD_FAILURE() << sql << ": " << PQresultErrorMessage(result.get());
    return std::nullopt;
  }
  return std::string(PQgetvalue(result.get(), 0, 0));
}

// Without the server binaries the PostgreSQL tests fail, saying what is missing and how to install it;
// they never skip (a skipped suite passes `make test` without having run).
TEST(PostgresServer, MissingBinariesAreAFailureNamingTheBinaryAndTheInstallScript) {
  const std::filesystem::path bin_dir = "/nonexistent/postgresql/bin";
  std::string message;
  try {
    PostgresServer server(bin_dir);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find((bin_dir / "initdb").string() + " is missing"), std::string::npos) << message;
  EXPECT_NE(message.find("scripts/install-deps.sh test"), std::string::npos) << message;
}

TEST(PostgresServer, ServesQueriesAndRemovesEverythingWhenDestroyed) {
  std::filesystem::path dir;
  std::string url;
  {
    PostgresServer server;
    dir = server.directory();
    url = server.url();
    EXPECT_EQ(url, "postgresql://postgres@127.0.0.1:" + std::to_string(server.port()) + "/samokoder_test");
    ASSERT_TRUE(std::filesystem::exists(dir / "data" / "PG_VERSION"));

    auto conn = connect(url);
    EXPECT_EQ(query_value(conn.get(), "select 1"), "1");
    EXPECT_EQ(query_value(conn.get(), "select current_database()"), "samokoder_test");
    EXPECT_EQ(query_value(conn.get(), "show fsync"), "on");
    EXPECT_EQ(query_value(conn.get(), "show listen_addresses"), "127.0.0.1");
    EXPECT_EQ(query_value(conn.get(), "select split_part(version(), ' ', 2) like '15.%'"), "t");
    if (::geteuid() == 0) {
      struct stat st {};
      ASSERT_EQ(::stat((dir / "data").c_str(), &st), 0);
      EXPECT_NE(st.st_uid, 0u) << "the cluster must not belong to root";
    }
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_EQ(PQping(url.c_str()), PQPING_NO_RESPONSE);
}

TEST(PostgresServer, CreatesFurtherDatabases) {
  auto& server = PostgresServer::shared();
  const std::string url = server.create_database("second_db");
  EXPECT_EQ(url, server.url("second_db"));
  auto conn = connect(url);
  EXPECT_EQ(query_value(conn.get(), "select current_database()"), "second_db");
  EXPECT_THROW(server.create_database("second_db"), std::runtime_error);
}

TEST(PostgresServer, KillAndRestartKeepsCommittedRowsAndPort) {
  auto& server = PostgresServer::shared();
  const auto port = server.port();
  {
    auto conn = connect(server.url());
    query_value(conn.get(), "create table crash_probe (id int primary key)");
    query_value(conn.get(), "insert into crash_probe select generate_series(1, 100)");
    server.kill_and_restart();
    // The old session died with the server.
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), "select 1"), &PQclear);
    EXPECT_NE(PQresultStatus(result.get()), PGRES_TUPLES_OK);
  }
  EXPECT_EQ(server.port(), port);
  auto conn = connect(server.url());
  EXPECT_EQ(query_value(conn.get(), "select count(*) from crash_probe"), "100");
  EXPECT_NE(server.log_tail().find("database system was interrupted"), std::string::npos)
      << server.log_tail();
}

TEST(PostgresServer, ForkedChildExitingDoesNotStopTheServer) {
  auto& server = PostgresServer::shared();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  // std::exit runs static destructors, including the shared server's, in the child.
  if (child == 0) std::exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(PQping(server.url().c_str()), PQPING_OK);
  EXPECT_TRUE(std::filesystem::exists(server.directory()));
}

}  // namespace
}  // namespace samokoder::testing
