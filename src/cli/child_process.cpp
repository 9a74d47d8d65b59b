#include "cli/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace conveyor {
namespace {

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

ChildResult RunChild(const ChildOptions& options) {
  ChildResult result;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    result.failure = std::string("cannot create pipes: ") + std::strerror(errno);
    return result;
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& e : options.extra_env) env_strings.push_back(e);
  std::vector<char*> envp, argv;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = options.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) {
    result.failure = std::string("cannot fork: ") + std::strerror(errno);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    return result;
  }
  if (pid == 0) {
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the worker blocks SIGINT/SIGTERM; not CMD
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    execvpe(argv[0], argv.data(), envp.data());
    std::string message = std::string("cannot run ") + argv[0] + ": " + std::strerror(errno) + "\n";
    ssize_t ignored = write(STDERR_FILENO, message.data(), message.size());
    (void)ignored;
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  SetNonBlocking(in[1]);
  SetNonBlocking(out[0]);
  SetNonBlocking(err[0]);

  size_t written = 0;
  int in_fd = in[1], out_fd = out[0], err_fd = err[0];
  if (options.input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  auto last_beat = std::chrono::steady_clock::now();
  char buf[16384];
  while (out_fd >= 0 || err_fd >= 0) {
    pollfd fds[3];
    int n = 0;
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    int ready = poll(fds, n, 500);
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < n && ready > 0; ++i) {
      if (fds[i].revents == 0) continue;
      int fd = fds[i].fd;
      if (fd == in_fd) {
        ssize_t w = write(fd, options.input.data() + written, options.input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN) written = options.input.size();  // child closed stdin
        if (written == options.input.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0) {
        if (fd == out_fd) {
          size_t room = options.max_stdout - std::min(options.max_stdout, result.out.size());
          result.out.append(buf, std::min(room, static_cast<size_t>(r)));
          if (static_cast<size_t>(r) > room) result.out_truncated = true;
        } else {
          result.err_tail.append(buf, static_cast<size_t>(r));
          if (result.err_tail.size() > 2 * options.stderr_tail) {
            result.err_tail.erase(0, result.err_tail.size() - options.stderr_tail);
          }
        }
      } else if (r == 0 || errno != EAGAIN) {
        close(fd);
        (fd == out_fd ? out_fd : err_fd) = -1;
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (options.heartbeat && now - last_beat >= options.heartbeat_every) {
      last_beat = now;
      options.heartbeat();
    }
  }
  if (in_fd >= 0) close(in_fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (result.err_tail.size() > options.stderr_tail) {
    result.err_tail.erase(0, result.err_tail.size() - options.stderr_tail);
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.failure = std::string("killed by signal ") + strsignal(WTERMSIG(status));
  }
  return result;
}

}  // namespace conveyor
