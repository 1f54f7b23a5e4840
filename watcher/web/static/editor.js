// The editor's pages: a button with data-confirm asks before it submits (an inline onclick would be refused by
// the Content-Security-Policy, which lets only the server's own script files run).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
