// The counting bot of Bottender's session guide, as in examples/counter.py.
module.exports = async function App(context) {
  const count = context.state.count + 1;
  context.setState({ count });
  await context.sendText(`Count: ${count}`);
};
