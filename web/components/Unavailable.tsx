/** Unavailable is the page shown when the BFF does not answer: a clear message, never a crash. */
export function Unavailable({ message }: { message?: string }) {
  return (
    <div role="alert" className="banner error">
      {message ?? "The store is not answering right now. Please try again in a moment."}
    </div>
  );
}
