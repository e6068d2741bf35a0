// Bottender 1.x peer for the benchmark (bench/README.md). Everything comes from
// the environment the bench sets: the fake platform API's origin, tokens, and
// BENCH_BOTTENDER_SYNC ("true": answer after the session is written, as the
// Python gateway does; "false": Bottender's default, answer first).
const sync = process.env.BENCH_BOTTENDER_SYNC !== 'false';

module.exports = {
  session: {
    driver: 'memory',
    stores: {
      memory: { maxSize: Number(process.env.BENCH_MAX_SIZE || 200000) },
    },
  },
  initialState: { count: 0 },
  channels: {
    telegram: {
      enabled: true,
      path: '/webhooks/telegram',
      accessToken: process.env.TELEGRAM_ACCESS_TOKEN,
      origin: process.env.BENCH_FAKE_ORIGIN,
      sync,
    },
    line: {
      enabled: true,
      path: '/webhooks/line',
      accessToken: process.env.LINE_ACCESS_TOKEN,
      channelSecret: process.env.LINE_CHANNEL_SECRET,
      origin: process.env.BENCH_FAKE_ORIGIN,
      sync,
    },
  },
};
